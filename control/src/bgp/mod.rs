//! BGP for the SD-WAN control plane: the wire codec (`wire`), and (to come) the session state
//! machine, the RIB and route reflection. Everything here is sans-IO: bytes and events in,
//! bytes and actions out; `sdwand` owns the sockets and the clock.

pub mod fsm;
pub mod rib;
pub mod speaker;
pub mod transport;
pub mod wire;
