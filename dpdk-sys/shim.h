/* Exported wrappers over DPDK functions that are `static inline` (or macros) in the headers,
 * so Rust can call them. Only what the data plane needs; each is a one-line forward. */
#ifndef SDWAN_DPDK_SHIM_H
#define SDWAN_DPDK_SHIM_H
#include <stdint.h>
#include <rte_mbuf.h>
#include <rte_ethdev.h>

/* RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP: function-like macros bindgen cannot expand. */
extern const uint64_t sdwan_rss_ip_tcp_udp;

int sdwan_errno(void);
unsigned sdwan_lcore_id(void);
uint64_t sdwan_rdtsc(void);
uint16_t sdwan_eth_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
uint16_t sdwan_eth_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
struct rte_mbuf *sdwan_pktmbuf_alloc(struct rte_mempool *mp);
int sdwan_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned count);
void sdwan_pktmbuf_free(struct rte_mbuf *m);
char *sdwan_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
char *sdwan_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len);
char *sdwan_pktmbuf_adj(struct rte_mbuf *m, uint16_t len);
int sdwan_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
unsigned sdwan_mempool_avail_count(const struct rte_mempool *mp);
#endif
