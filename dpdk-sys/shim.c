#include "shim.h"
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_cycles.h>

const uint64_t sdwan_rss_ip_tcp_udp = RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP;

int sdwan_errno(void) { return rte_errno; }
unsigned sdwan_lcore_id(void) { return rte_lcore_id(); }
uint64_t sdwan_rdtsc(void) { return rte_rdtsc(); }
uint16_t sdwan_eth_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{ return rte_eth_rx_burst(port, queue, pkts, n); }
uint16_t sdwan_eth_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{ return rte_eth_tx_burst(port, queue, pkts, n); }
struct rte_mbuf *sdwan_pktmbuf_alloc(struct rte_mempool *mp) { return rte_pktmbuf_alloc(mp); }
int sdwan_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned count)
{ return rte_pktmbuf_alloc_bulk(mp, mbufs, count); }
void sdwan_pktmbuf_free(struct rte_mbuf *m) { rte_pktmbuf_free(m); }
char *sdwan_pktmbuf_append(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_append(m, len); }
char *sdwan_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_prepend(m, len); }
char *sdwan_pktmbuf_adj(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_adj(m, len); }
int sdwan_pktmbuf_trim(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_trim(m, len); }
unsigned sdwan_mempool_avail_count(const struct rte_mempool *mp) { return rte_mempool_avail_count(mp); }
