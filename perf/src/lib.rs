pub mod pktgen;
