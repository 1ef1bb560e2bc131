/*
 * flannel_udp: the data path of flanneld's "udp" backend (pkg/backend/udp/proxy_amd64.c), as an N-API addon.
 *
 * Wire format (FLANNEL-COMPAT.md 5.4): the UDP payload is the bare IPv4 packet read from the TUN device
 * (IFF_TUN | IFF_NO_PI, so no packet-info header), TTL decremented by one, header checksum patched. Every
 * node sends to <peer PublicIP>:<its own port>.
 *
 * Two native threads, one per direction, so the per-packet path never touches JS or allocates:
 *   tx: TUN -> peer lookup -> sendto()          (no peer: ICMP net-unreachable written back into the TUN)
 *   rx: recv() -> sanity checks -> write(TUN)
 * Both poll() on their data fd plus an eventfd that stop() signals; the data fds are non-blocking and each
 * wake-up drains a bounded burst, so a flood cannot starve the stop request.
 *
 * Offloads, invisible on the wire (still one bare IPv4 packet per datagram, so flanneld peers interoperate), that
 * take the per-packet cost of a userspace hop from ~10 to ~1-2 µs of CPU:
 *   - the TUN is opened with IFF_VNET_HDR and advertises checksum + TCPv4 segmentation offload: the kernel hands
 *     over TCP super-packets of up to 64 KiB, which tcp_segment() cuts into MSS-sized segments itself;
 *   - datagrams of one wake-up to the same peer with the same size leave in one sendmsg(UDP_SEGMENT) (UDP GSO);
 *   - the socket has UDP_GRO: one recvmsg() returns up to 64 same-size datagrams of a flow;
 *   - in-order TCP data segments of one flow from such a receive enter the TUN as one GSO write (coal_t), so the
 *     node's forwarding path and the pod's stack see one packet instead of up to 45.
 * Each is best effort and falls back to the packet-at-a-time path where the kernel or the device lacks it.
 *
 * JS owns the lifecycle: open() -> setPeers()/setTunAddress() at any time -> start() -> stop(). stop() joins
 * the threads before closing the fds, so no thread ever sees a closed (or reused) descriptor.
 */
#define _GNU_SOURCE
#include <node_api.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define FWD_MAGIC 0x666c7564u   /* guards against a foreign napi_external being passed in */
#define BUF_SIZE 65536          /* any IPv4 packet / UDP datagram fits, so oversize is detected, not truncated */
#define VNET_HDR sizeof(struct virtio_net_hdr)
#define BURST 64                /* packets handled per poll() wake-up before re-checking the stop fd */
#define MAX_PEERS (1u << 20)    /* bounds setPeers() memory; a /8 network of /24 leases is 65536 */
#define SOCK_BUF (4 << 20)      /* socket buffers: absorb bursts while the rx thread waits for a core */
#define GSO_MAX_SEGS 64         /* datagrams per UDP_SEGMENT send (the kernel's limit is 64 or 128) */
#define GSO_MAX_BYTES 65507     /* payload per UDP send (one datagram or a UDP_SEGMENT batch): 65535 − IPv4 − UDP */

/* Counters of one direction. Only the owning thread writes them, so a relaxed load+store (no locked
 * read-modify-write) is enough; stats() reads them from the JS thread. */
typedef struct {
  _Atomic uint64_t packets, bytes, no_route, icmp_sent, drop_ttl, drop_runt, drop_non_ipv4, drop_oversize,
      send_errors, tun_write_errors;
  _Atomic int fatal_errno; /* non-zero once the thread gave up on an unrecoverable fd error */
} counters_t;

#define BUMP(c, v) \
  atomic_store_explicit(&(c), atomic_load_explicit(&(c), memory_order_relaxed) + (v), memory_order_relaxed)
#define READ(c) ((double)atomic_load_explicit(&(c), memory_order_relaxed))

typedef struct {
  uint32_t net, mask;     /* host byte order */
  struct sockaddr_in dst; /* peer PublicIP : our own port */
} peer_t;

typedef struct {
  size_t n;
  peer_t e[];
} peer_table_t;

enum { ST_OPEN, ST_RUNNING, ST_CLOSED };

typedef struct {
  uint32_t magic;
  int tun_fd, sock_fd, stop_fd;
  char tun_name[IFNAMSIZ];
  uint16_t port;     /* bound port, host order; also the destination port of every send */
  uint32_t mtu;      /* receive-side limit: larger datagrams cannot be written to the TUN */
  int state;         /* only touched on the JS thread */
  napi_ref self_ref; /* strong reference while running, so GC cannot finalize a live forwarder */
  _Atomic uint32_t tun_addr; /* host order; 0 = unknown, no ICMP is generated */
  pthread_mutex_t peers_lock;
  peer_table_t *peers;
  pthread_t tx_thread, rx_thread;
  counters_t tx, rx;
  int vnet; /* the TUN fd carries a virtio_net_hdr before each packet, both ways (IFF_VNET_HDR) */
  int gso;  /* tx thread only: UDP_SEGMENT works on this socket's route (cleared on the first EIO/EINVAL) */
  int gro;  /* UDP_GRO is on: a receive may carry several datagrams of gso_size bytes */
} fwd_t;

/* Datagrams read from the TUN in one wake-up, queued to leave in one UDP_SEGMENT send when they go to the same peer
 * and have the same size (the last may be shorter). On the wire they are still one IP packet per datagram. */
typedef struct {
  struct sockaddr_in to;
  size_t len, seg;
  int count, closed;
  uint8_t buf[GSO_MAX_BYTES];
} batch_t;

/* ---------------------------------------------------------------- packet helpers */

static inline uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }
static inline void put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v & 0xff; }
static inline void put32(uint8_t *p, uint32_t v) { put16(p, v >> 16); put16(p + 2, v & 0xffff); }

/* RFC 1071 sum of 16-bit words, unfolded (64-bit accumulator: no overflow for any IPv4 packet). */
static uint64_t csum_add(uint64_t sum, const uint8_t *p, size_t len) {
  for (; len > 1; p += 2, len -= 2) sum += get16(p);
  if (len) sum += (uint32_t)p[0] << 8;
  return sum;
}

static uint16_t csum_fold(uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

/* RFC 1071 Internet checksum, returned in host order. */
static uint16_t inet_csum(const uint8_t *p, size_t len) { return csum_fold(csum_add(0, p, len)); }

/* One packet into the TUN, behind an all-zero virtio_net_hdr when the fd has one (no offload asked: the packet is
 * complete, its checksums included). */
static ssize_t tun_write(fwd_t *f, const uint8_t *pkt, size_t n) {
  if (!f->vnet) return write(f->tun_fd, pkt, n);
  struct virtio_net_hdr hdr;
  memset(&hdr, 0, sizeof hdr);
  struct iovec iov[2] = {{.iov_base = &hdr, .iov_len = sizeof hdr}, {.iov_base = (void *)pkt, .iov_len = n}};
  return writev(f->tun_fd, iov, 2);
}

/* Decrements the TTL and patches the header checksum incrementally (RFC 1624 eqn. 3). The result is
 * bit-identical to flanneld's byte-order patch (compared for all 65536 checksum values), equals a full
 * recomputation for a valid header, and leaves a corrupt header corrupt, so the receiving kernel still drops
 * it. Returns 0 when the packet must be dropped: TTL 1 would reach 0; TTL 0, which flanneld's `--ttl == 0`
 * wraps to 255 and forwards, is dropped too. */
static int decrement_ttl(uint8_t *ip) {
  if (ip[8] <= 1) return 0;
  uint16_t old_word = get16(ip + 8); /* TTL is the high byte of the TTL/protocol word */
  ip[8]--;
  uint32_t sum = (uint16_t)~get16(ip + 10) + (uint16_t)~old_word + get16(ip + 8);
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  put16(ip + 10, (uint16_t)~sum);
  return 1;
}

/* First entry containing dst (flanneld is first-match too; leases never overlap, so this equals
 * longest-prefix in practice). flanneld also moves the hit to the front; with disjoint entries that only
 * changes speed, so we keep the table in the order JS gave it. */
static int lookup_peer(fwd_t *f, uint32_t dst, struct sockaddr_in *out) {
  int found = 0;
  pthread_mutex_lock(&f->peers_lock);
  const peer_table_t *t = f->peers;
  for (size_t i = 0; t && i < t->n; i++) {
    if ((dst & t->e[i].mask) == t->e[i].net) {
      *out = t->e[i].dst;
      found = 1;
      break;
    }
  }
  pthread_mutex_unlock(&f->peers_lock);
  return found;
}

/* ICMP destination unreachable, code 0 (net), written back into the TUN like flanneld's
 * send_net_unreachable(): source = TUN address, TTL 8, quoting the offending header + 8 bytes.
 * Never about ICMP, non-first fragments (RFC 1812 4.3.2.7) or headers of 60 bytes or more. */
static void send_net_unreachable(fwd_t *f, const uint8_t *off, size_t n) {
  size_t hl = (size_t)(off[0] & 0x0f) * 4;
  uint32_t src = atomic_load_explicit(&f->tun_addr, memory_order_relaxed);
  if (off[9] == IPPROTO_ICMP || (get16(off + 6) & 0x1fff) || hl >= 60 || hl < 20 || hl > n || src == 0) return;
  /* flanneld always copies hl + 8 bytes; for a shorter packet we quote only what exists. */
  size_t quote = hl + 8 <= n ? hl + 8 : n;
  size_t len = 20 + 8 + quote;
  uint8_t pkt[20 + 8 + 60 + 8];
  memset(pkt, 0, 28);
  pkt[0] = 0x45;                  /* version 4, IHL 5 */
  put16(pkt + 2, (uint16_t)len);  /* total length; id, flags, fragment offset stay 0 */
  pkt[8] = 8;                     /* TTL */
  pkt[9] = IPPROTO_ICMP;
  put32(pkt + 12, src);
  memcpy(pkt + 16, off + 12, 4);  /* back to the offender's source */
  put16(pkt + 10, inet_csum(pkt, 20));
  pkt[20] = 3;                    /* type: destination unreachable; code 0 and the unused word stay 0 */
  memcpy(pkt + 28, off, quote);
  put16(pkt + 22, inet_csum(pkt + 20, 8 + quote));
  if (tun_write(f, pkt, len) < 0)
    BUMP(f->tx.tun_write_errors, 1);
  else
    BUMP(f->tx.icmp_sent, 1);
}

/* Sends the queued datagrams: one sendmsg with UDP_SEGMENT, or one sendto each when GSO is off or a single one. */
static void batch_flush(fwd_t *f, batch_t *b) {
  counters_t *c = &f->tx;
  if (b->count == 0) return;
  if (b->count > 1 && f->gso) {
    char control[CMSG_SPACE(sizeof(uint16_t))];
    struct iovec iov = {.iov_base = b->buf, .iov_len = b->len};
    struct msghdr msg = {.msg_name = &b->to, .msg_namelen = sizeof b->to, .msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = control, .msg_controllen = sizeof control};
    memset(control, 0, sizeof control);
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_UDP;
    cm->cmsg_type = UDP_SEGMENT;
    cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    uint16_t seg = (uint16_t)b->seg;
    memcpy(CMSG_DATA(cm), &seg, sizeof seg);
    if (sendmsg(f->sock_fd, &msg, 0) >= 0) {
      BUMP(c->packets, b->count);
      BUMP(c->bytes, b->len);
      goto done;
    }
    /* The route's device cannot segment (no checksum offload: EIO) or the kernel lacks UDP GSO: send one by one
     * from now on. Other errors (buffer full, no route) lose the batch, counted per datagram. */
    if (errno == EIO || errno == EINVAL || errno == ENOPROTOOPT || errno == EOPNOTSUPP) f->gso = 0;
    else {
      BUMP(c->send_errors, b->count);
      goto done;
    }
  }
  for (size_t off = 0; off < b->len; off += b->seg) {
    size_t n = b->len - off < b->seg ? b->len - off : b->seg;
    if (sendto(f->sock_fd, b->buf + off, n, 0, (struct sockaddr *)&b->to, sizeof b->to) < 0) {
      BUMP(c->send_errors, 1);
    } else {
      BUMP(c->packets, 1);
      BUMP(c->bytes, n);
    }
  }
done:
  b->count = 0;
  b->len = 0;
  b->closed = 0;
}

/* Room for an n-byte datagram to `to` at the end of the batch, flushing first when it cannot join (another peer, a
 * larger size, after a shorter one, full). NULL when no UDP datagram can carry n bytes. */
static uint8_t *batch_reserve(fwd_t *f, batch_t *b, const struct sockaddr_in *to, size_t n) {
  if (n > GSO_MAX_BYTES) return NULL;
  if (b->count > 0 && (b->closed || n > b->seg || b->count >= GSO_MAX_SEGS || b->len + n > GSO_MAX_BYTES ||
                       to->sin_addr.s_addr != b->to.sin_addr.s_addr || to->sin_port != b->to.sin_port))
    batch_flush(f, b);
  if (b->count == 0) {
    b->to = *to;
    b->seg = n;
  }
  return b->buf + b->len;
}

static void batch_commit(batch_t *b, size_t n) {
  b->len += n;
  b->count++;
  if (n < b->seg) b->closed = 1; /* only the last segment may be shorter */
}

static void batch_add(fwd_t *f, batch_t *b, const struct sockaddr_in *to, const uint8_t *pkt, size_t n) {
  uint8_t *slot = batch_reserve(f, b, to, n);
  if (!slot) { BUMP(f->tx.send_errors, 1); return; } /* sendto would fail with EMSGSIZE */
  memcpy(slot, pkt, n);
  batch_commit(b, n);
}

/* Finishes a checksum the kernel left to the device (TUN_F_CSUM): the field holds the pseudo-header sum; the
 * ones-complement sum from csum_start to the end goes there (0 is sent as 0xffff, as skb_checksum_help does). */
static int complete_csum(uint8_t *pkt, size_t n, size_t start, size_t offset) {
  if (start + offset + 2 > n) return 0;
  uint16_t v = csum_fold(csum_add(0, pkt + start, n - start));
  put16(pkt + start + offset, v ? v : 0xffff);
  return 1;
}

/* A TSO packet from the TUN (TUN_F_TSO4): cut into the MSS-sized TCP segments the kernel would have made (IP id
 * counted up, sequence numbers advanced, FIN/PSH only on the last, CWR only on the first, both checksums computed),
 * written straight into the batch. On the wire each is a plain IPv4 packet in its own datagram, as flanneld sends. */
static void tcp_segment(fwd_t *f, batch_t *b, const struct sockaddr_in *to, const uint8_t *pkt, size_t n, size_t mss) {
  counters_t *c = &f->tx;
  size_t ihl = (size_t)(pkt[0] & 0x0f) * 4;
  if (ihl < 20 || pkt[9] != IPPROTO_TCP || n < ihl + 20) { BUMP(c->drop_runt, 1); return; }
  size_t thl = (size_t)(pkt[ihl + 12] >> 4) * 4, hl = ihl + thl;
  if (thl < 20 || n <= hl || mss == 0) { BUMP(c->drop_runt, 1); return; }
  size_t payload = n - hl;
  uint16_t id = get16(pkt + 4);
  uint32_t seq = get32(pkt + ihl + 4);
  uint8_t flags = pkt[ihl + 13];
  uint64_t pseudo = csum_add(0, pkt + 12, 8) + IPPROTO_TCP; /* addresses + protocol; the length is per segment */
  for (size_t off = 0, i = 0; off < payload; off += mss, i++) {
    size_t len = payload - off < mss ? payload - off : mss, tot = hl + len;
    uint8_t *seg = batch_reserve(f, b, to, tot);
    if (!seg) { BUMP(c->send_errors, 1); continue; }
    memcpy(seg, pkt, hl);
    memcpy(seg + hl, pkt + hl + off, len);
    put16(seg + 2, (uint16_t)tot);
    put16(seg + 4, (uint16_t)(id + i));
    put16(seg + 10, 0);
    put16(seg + 10, inet_csum(seg, ihl));
    put32(seg + ihl + 4, seq + (uint32_t)off);
    uint8_t fl = flags;
    if (off + len < payload) fl &= (uint8_t)~0x09; /* FIN, PSH */
    if (i > 0) fl &= (uint8_t)~0x80;               /* CWR */
    seg[ihl + 13] = fl;
    put16(seg + ihl + 16, 0);
    uint16_t sum = csum_fold(csum_add(pseudo + thl + len, seg + ihl, thl + len));
    put16(seg + ihl + 16, sum ? sum : 0xffff);
    batch_commit(b, tot);
  }
}

/* h: the packet's virtio_net_hdr when the TUN has offloads (NULL otherwise). */
static void tx_packet(fwd_t *f, batch_t *b, const struct virtio_net_hdr *h, uint8_t *pkt, size_t n) {
  counters_t *c = &f->tx;
  struct sockaddr_in to;
  if (n < 20) { BUMP(c->drop_runt, 1); return; }
  /* IPv6 (router solicitations, MLD) shows up here when the device has IPv6 enabled. */
  if (pkt[0] >> 4 != 4) { BUMP(c->drop_non_ipv4, 1); return; }
  /* Same order as flanneld: route first (the ICMP quotes the original TTL), then TTL. */
  if (!lookup_peer(f, get32(pkt + 16), &to)) {
    BUMP(c->no_route, 1);
    send_net_unreachable(f, pkt, n);
    return;
  }
  if (!decrement_ttl(pkt)) { BUMP(c->drop_ttl, 1); return; }
  if (h && h->gso_type != VIRTIO_NET_HDR_GSO_NONE) {
    /* Only TCPv4 can come: that is the one segmentation offload the device advertises. */
    if ((h->gso_type & ~VIRTIO_NET_HDR_GSO_ECN) == VIRTIO_NET_HDR_GSO_TCPV4) tcp_segment(f, b, &to, pkt, n, h->gso_size);
    else BUMP(c->drop_runt, 1);
    return;
  }
  if (h && (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !complete_csum(pkt, n, h->csum_start, h->csum_offset)) {
    BUMP(c->drop_runt, 1);
    return;
  }
  batch_add(f, b, &to, pkt, n);
}

/* Received TCP segments of one flow, merged into one super-packet that enters the TUN as a single GSO write (the
 * receive side's GRO, which a TUN write does not get from the kernel). Only plain in-order data segments join:
 * IPv4 without options, not fragmented, flags ACK (PSH closes the run), same addresses, ports, TOS, TTL, DF, ack,
 * window and identical TCP options, each exactly continuing the previous one, all of the first one's size but the
 * last. Their checksums are verified first: the kernel trusts a GSO write's data (CHECKSUM_PARTIAL). */
typedef struct {
  size_t len, ihl, hl, mss;
  int count, closed;
  uint32_t next_seq;
  uint64_t bytes; /* wire bytes of the merged segments, for the counters */
  uint8_t buf[65535];
} coal_t;

static void rx_write(fwd_t *f, const uint8_t *pkt, size_t n) {
  counters_t *c = &f->rx;
  if (tun_write(f, pkt, n) < 0) { BUMP(c->tun_write_errors, 1); return; }
  BUMP(c->packets, 1);
  BUMP(c->bytes, n);
}

static void coal_flush(fwd_t *f, coal_t *co) {
  counters_t *c = &f->rx;
  if (co->count == 0) return;
  if (co->count == 1) {
    rx_write(f, co->buf, co->len);
  } else {
    uint8_t *p = co->buf;
    put16(p + 2, (uint16_t)co->len);
    put16(p + 10, 0);
    put16(p + 10, inet_csum(p, co->ihl));
    /* NEEDS_CSUM: the field holds the (uncomplemented) pseudo-header sum; the stack finishes it per segment. */
    uint64_t pseudo = csum_add(0, p + 12, 8) + IPPROTO_TCP + (co->len - co->ihl);
    put16(p + co->ihl + 16, (uint16_t)~csum_fold(pseudo));
    struct virtio_net_hdr h = {.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
                               .hdr_len = (uint16_t)co->hl, .gso_size = (uint16_t)co->mss,
                               .csum_start = (uint16_t)co->ihl, .csum_offset = 16};
    struct iovec iov[2] = {{.iov_base = &h, .iov_len = sizeof h}, {.iov_base = p, .iov_len = co->len}};
    if (writev(f->tun_fd, iov, 2) < 0) BUMP(c->tun_write_errors, co->count);
    else {
      BUMP(c->packets, co->count);
      BUMP(c->bytes, co->bytes);
    }
  }
  co->count = 0;
  co->len = 0;
  co->bytes = 0;
  co->closed = 0;
}

/* A segment that may start or join a run: see coal_t. Returns the TCP payload length, 0 when it may not. */
static size_t coalescable(const uint8_t *p, size_t n) {
  if ((p[0] & 0x0f) != 5 || p[9] != IPPROTO_TCP || get16(p + 2) != n || (get16(p + 6) & 0x3fff) || n < 40) return 0;
  size_t thl = (size_t)(p[20 + 12] >> 4) * 4;
  if (thl < 20 || n <= 20 + thl || (p[20 + 13] & 0xf7) != 0x10) return 0; /* ACK, optionally PSH, nothing else */
  if (inet_csum(p, 20) != 0) return 0;
  uint64_t pseudo = csum_add(0, p + 12, 8) + IPPROTO_TCP + (n - 20);
  if (csum_fold(csum_add(pseudo, p + 20, n - 20)) != 0) return 0;
  return n - 20 - thl;
}

static int joins(const coal_t *co, const uint8_t *p, size_t n, size_t payload) {
  const uint8_t *q = co->buf;
  size_t thl = co->hl - co->ihl;
  return co->count > 0 && !co->closed && payload <= co->mss && co->len + payload <= sizeof co->buf &&
         (size_t)(p[20 + 12] >> 4) * 4 == thl && get32(p + 20 + 4) == co->next_seq &&
         p[1] == q[1] && p[8] == q[8] && (p[6] & 0x40) == (q[6] & 0x40) && !memcmp(p + 12, q + 12, 8) &&
         !memcmp(p + 20, q + 20, 4) && !memcmp(p + 20 + 8, q + 20 + 8, 4) && !memcmp(p + 20 + 14, q + 20 + 14, 2) &&
         !memcmp(p + 20 + 20, q + 20 + 20, thl - 20) && n > 0;
}

static void coal_add(fwd_t *f, coal_t *co, const uint8_t *p, size_t n) {
  size_t payload = coalescable(p, n);
  if (payload == 0) {
    coal_flush(f, co);
    rx_write(f, p, n);
    return;
  }
  size_t thl = (size_t)(p[20 + 12] >> 4) * 4;
  if (joins(co, p, n, payload)) {
    memcpy(co->buf + co->len, p + 20 + thl, payload);
    co->len += payload;
    co->buf[20 + 13] |= p[20 + 13] & 0x08; /* PSH of the last segment */
  } else {
    coal_flush(f, co);
    memcpy(co->buf, p, n);
    co->len = n;
    co->ihl = 20;
    co->hl = 20 + thl;
    co->mss = payload;
  }
  co->count++;
  co->bytes += n;
  co->next_seq = get32(p + 20 + 4) + (uint32_t)payload;
  if (payload < co->mss || (p[20 + 13] & 0x08)) co->closed = 1; /* a short or pushed segment ends the run */
}

/* co: the receive coalescer (NULL: write each packet as it comes). */
static void rx_packet(fwd_t *f, coal_t *co, uint8_t *pkt, size_t n) {
  counters_t *c = &f->rx;
  /* The sender is not validated (flanneld doesn't either); only what the TUN could not take is filtered.
   * flanneld does not check the version; we drop and count non-IPv4 so garbage never reaches the kernel. */
  if (n < 20) { BUMP(c->drop_runt, 1); return; }
  if (pkt[0] >> 4 != 4) { BUMP(c->drop_non_ipv4, 1); return; }
  if (n > f->mtu) { BUMP(c->drop_oversize, 1); return; }
  if (!decrement_ttl(pkt)) { BUMP(c->drop_ttl, 1); return; }
  if (co) coal_add(f, co, pkt, n);
  else rx_write(f, pkt, n);
}

/* One receive: a datagram, or with UDP_GRO several datagrams of the same size (the last may be shorter) that the
 * kernel coalesced; each is one IP packet. Returns recvmsg's result; *seg is the datagram size (0: just one). */
static ssize_t recv_datagrams(fwd_t *f, uint8_t *buf, size_t size, size_t *seg) {
  char control[CMSG_SPACE(sizeof(int))];
  struct iovec iov = {.iov_base = buf, .iov_len = size};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
  ssize_t n = recvmsg(f->sock_fd, &msg, MSG_DONTWAIT);
  *seg = 0;
  if (n <= 0 || !f->gro) return n;
  for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
    if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
      int v;
      memcpy(&v, CMSG_DATA(cm), sizeof v);
      if (v > 0) *seg = (size_t)v;
    }
  }
  return n;
}

/* ---------------------------------------------------------------- threads */

/* One loop for both directions: they differ only in the fd, the read call and the per-packet function. */
static void run_loop(fwd_t *f, int is_tx, batch_t *b, coal_t *co) {
  uint8_t buf[BUF_SIZE + VNET_HDR]; /* on the thread's stack: no allocation on the packet path */
  int fd = is_tx ? f->tun_fd : f->sock_fd;
  counters_t *c = is_tx ? &f->tx : &f->rx;
  struct pollfd pfd[2] = {{.fd = fd, .events = POLLIN}, {.fd = f->stop_fd, .events = POLLIN}};
  for (;;) {
    if (poll(pfd, 2, -1) < 0) {
      if (errno == EINTR) continue;
      atomic_store(&c->fatal_errno, errno);
      return;
    }
    if (pfd[1].revents) return; /* stop requested; the eventfd stays readable for the other thread */
    for (int i = 0; i < BURST; i++) {
      size_t seg = 0;
      ssize_t n = is_tx ? read(fd, buf, sizeof buf) : recv_datagrams(f, buf, sizeof buf, &seg);
      if (n >= 0) {
        if (is_tx && f->vnet) {
          struct virtio_net_hdr h;
          if ((size_t)n < VNET_HDR) { BUMP(c->drop_runt, 1); continue; }
          memcpy(&h, buf, sizeof h);
          tx_packet(f, b, &h, buf + VNET_HDR, (size_t)n - VNET_HDR);
        } else if (is_tx) tx_packet(f, b, NULL, buf, (size_t)n);
        else if (seg == 0 || seg >= (size_t)n) rx_packet(f, co, buf, (size_t)n);
        else for (size_t off = 0; off < (size_t)n; off += seg) rx_packet(f, co, buf + off, (size_t)n - off < seg ? (size_t)n - off : seg);
        continue;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      /* A UDP socket reports transient conditions (ICMP errors, memory pressure) through recv; those
       * are consumed by the failing call. A TUN read error (e.g. EBADFD: device deleted) is permanent,
       * and looping on it would spin a core, so the thread ends and stats() reports why. */
      if (is_tx || errno == EBADF || errno == ENOTSOCK || errno == EFAULT || errno == EINVAL) {
        if (b) batch_flush(f, b);
        if (co) coal_flush(f, co);
        atomic_store(&c->fatal_errno, errno);
        return;
      }
      break;
    }
    if (b) batch_flush(f, b); /* never hold a packet across poll() */
    if (co) coal_flush(f, co);
  }
}

static void *tx_main(void *arg) {
  batch_t *b = calloc(1, sizeof *b); /* once per thread; ~60 KiB, kept off the stack next to the read buffer */
  if (!b) {
    atomic_store(&((fwd_t *)arg)->tx.fatal_errno, ENOMEM);
    return NULL;
  }
  run_loop((fwd_t *)arg, 1, b, NULL);
  free(b);
  return NULL;
}

static void *rx_main(void *arg) {
  fwd_t *f = arg;
  coal_t *co = f->vnet ? calloc(1, sizeof *co) : NULL; /* GSO writes need the virtio_net_hdr */
  run_loop(f, 0, NULL, co);
  free(co);
  return NULL;
}

/* ---------------------------------------------------------------- lifecycle */

static void signal_stop(fwd_t *f) {
  uint64_t one = 1;
  ssize_t r = write(f->stop_fd, &one, sizeof one);
  (void)r; /* can only fail if the counter would overflow, i.e. it is already signalled */
}

/* Idempotent: joins running threads, then closes every fd (the non-persistent TUN device vanishes). */
static void stop_and_close(napi_env env, fwd_t *f) {
  if (f->state == ST_RUNNING) {
    signal_stop(f);
    pthread_join(f->tx_thread, NULL);
    pthread_join(f->rx_thread, NULL);
    if (env && f->self_ref) napi_delete_reference(env, f->self_ref);
    f->self_ref = NULL;
  }
  if (f->state != ST_CLOSED) {
    /* A persistent device (--keep-device) outlives us: a later reader without a virtio_net_hdr (flanneld) must
     * get plain packets again, not 64 KiB TCP super-packets. */
    if (f->vnet) (void)ioctl(f->tun_fd, TUNSETOFFLOAD, 0UL);
    close(f->tun_fd);
    close(f->sock_fd);
    close(f->stop_fd);
    f->state = ST_CLOSED;
  }
}

static void finalize(napi_env env, void *data, void *hint) {
  fwd_t *f = data;
  /* A running forwarder is pinned by self_ref, so this only finds one running at environment teardown;
   * the threads are still joined (the reference itself is being torn down, so it is not deleted here). */
  stop_and_close(NULL, f);
  free(f->peers);
  pthread_mutex_destroy(&f->peers_lock);
  f->magic = 0;
  free(f);
}

/* ---------------------------------------------------------------- N-API glue */

/* Throws an Error whose .code is the errno name (EPERM, EADDRINUSE, ...) so JS can map it. */
static napi_value throw_errno(napi_env env, int err, const char *what) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  const char *code = strerrorname_np(err);
  napi_throw_error(env, code ? code : "EUNKNOWN", msg);
  return NULL;
}

#define NAPI_CALL(env, call)                                   \
  do {                                                         \
    if ((call) != napi_ok) {                                   \
      bool pending;                                            \
      napi_is_exception_pending((env), &pending);              \
      if (!pending) napi_throw_error((env), NULL, #call " failed"); \
      return NULL;                                             \
    }                                                          \
  } while (0)

static napi_value get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < want) { napi_throw_type_error(env, NULL, "missing arguments"); return NULL; }
  return argv[0];
}

static fwd_t *get_fwd(napi_env env, napi_value v) {
  napi_valuetype t;
  void *p = NULL;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external || napi_get_value_external(env, v, &p) != napi_ok ||
      !p || ((fwd_t *)p)->magic != FWD_MAGIC) {
    napi_throw_type_error(env, NULL, "not a flannel_udp handle");
    return NULL;
  }
  return p;
}

static int get_u32(napi_env env, napi_value v, uint32_t *out) {
  if (napi_get_value_uint32(env, v, out) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected an unsigned 32-bit integer");
    return 0;
  }
  return 1;
}

static napi_value set_prop(napi_env env, napi_value obj, const char *key, napi_value v) {
  NAPI_CALL(env, napi_set_named_property(env, obj, key, v));
  return obj;
}

static napi_value set_num(napi_env env, napi_value obj, const char *key, double d) {
  napi_value v;
  NAPI_CALL(env, napi_create_double(env, d, &v));
  return set_prop(env, obj, key, v);
}

/* open(nameTemplate, bindAddr u32 host order, port, mtu) -> {handle, tunName, port} */
static napi_value js_open(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  uint32_t addr, port, mtu;
  char name[IFNAMSIZ];
  size_t name_len;
  if (!get_args(env, info, 4, argv)) return NULL;
  /* Measure first: napi_get_value_string_utf8 would silently truncate a name that is too long. */
  if (napi_get_value_string_utf8(env, argv[0], NULL, 0, &name_len) != napi_ok || name_len == 0 ||
      name_len >= IFNAMSIZ) {
    napi_throw_type_error(env, NULL, "tunName must be a string of 1 to 15 bytes");
    return NULL;
  }
  NAPI_CALL(env, napi_get_value_string_utf8(env, argv[0], name, sizeof name, &name_len));
  if (!get_u32(env, argv[1], &addr) || !get_u32(env, argv[2], &port) || !get_u32(env, argv[3], &mtu)) return NULL;
  if (port > 65535 || mtu < 68 || mtu > BUF_SIZE) {
    napi_throw_range_error(env, NULL, "port or mtu out of range");
    return NULL;
  }

  int tun = -1, sock = -1, efd = -1, err;
  const char *what;
  char bind_what[64], ip[INET_ADDRSTRLEN];
  struct in_addr bind_ia = {.s_addr = htonl(addr)};
  inet_ntop(AF_INET, &bind_ia, ip, sizeof ip);
  snprintf(bind_what, sizeof bind_what, "bind %s:%u", ip, port); /* the usual operator mistake: name it */
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  /* Non-persistent: the device dies with the fd. IFF_VNET_HDR lets the kernel hand over TCP super-packets
   * (TUNSETOFFLOAD below) that tcp_segment() cuts up; the wire format does not change. */
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | IFF_VNET_HDR;
  memcpy(ifr.ifr_name, name, name_len + 1);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(addr)};
  socklen_t sa_len = sizeof sa;

  what = "open /dev/net/tun";
  if ((tun = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK)) < 0) goto fail;
  char tun_what[48];
  snprintf(tun_what, sizeof tun_what, "create TUN device %s", name);
  what = tun_what;
  if (ioctl(tun, TUNSETIFF, &ifr) < 0) goto fail;
  /* Best effort: without it the header is still there, just never asks for anything. */
  (void)ioctl(tun, TUNSETOFFLOAD, (unsigned long)(TUN_F_CSUM | TUN_F_TSO4));
  what = "udp socket";
  if ((sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0) goto fail;
  what = bind_what;
  if (bind(sock, (struct sockaddr *)&sa, sizeof sa) < 0) goto fail;
  if (getsockname(sock, (struct sockaddr *)&sa, &sa_len) < 0) goto fail; /* port 0 -> the kernel's choice */
  /* The default receive buffer (~208 KiB, ~90 full-size datagrams) overflows under TCP bursts whenever the
   * rx thread is briefly descheduled, and every overflow is a loss TCP then backs off for. The FORCE variants
   * pass net.core.[rw]mem_max (we hold CAP_NET_ADMIN to open a TUN anyway); best effort either way. */
  int bufsz = SOCK_BUF;
  if (setsockopt(sock, SOL_SOCKET, SO_RCVBUFFORCE, &bufsz, sizeof bufsz) < 0)
    (void)setsockopt(sock, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof bufsz);
  if (setsockopt(sock, SOL_SOCKET, SO_SNDBUFFORCE, &bufsz, sizeof bufsz) < 0)
    (void)setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof bufsz);
  /* Let the kernel hand over same-flow datagrams coalesced (UDP GRO, Linux 5.0+); best effort. */
  int one = 1;
  int gro = setsockopt(sock, SOL_UDP, UDP_GRO, &one, sizeof one) == 0;
  what = "eventfd";
  if ((efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) goto fail;

  fwd_t *f = calloc(1, sizeof *f);
  what = "calloc";
  if (!f) { errno = ENOMEM; goto fail; }
  f->magic = FWD_MAGIC;
  f->tun_fd = tun;
  f->sock_fd = sock;
  f->stop_fd = efd;
  memcpy(f->tun_name, ifr.ifr_name, IFNAMSIZ);
  f->tun_name[IFNAMSIZ - 1] = 0;
  f->port = ntohs(sa.sin_port);
  f->mtu = mtu;
  f->state = ST_OPEN;
  f->vnet = 1;
  f->gso = 1;
  f->gro = gro;
  pthread_mutex_init(&f->peers_lock, NULL);

  napi_value result, handle, str;
  if (napi_create_external(env, f, finalize, NULL, &handle) != napi_ok) {
    finalize(env, f, NULL);
    napi_throw_error(env, NULL, "napi_create_external failed");
    return NULL;
  }
  NAPI_CALL(env, napi_create_object(env, &result));
  NAPI_CALL(env, napi_create_string_utf8(env, f->tun_name, NAPI_AUTO_LENGTH, &str));
  if (!set_prop(env, result, "handle", handle) || !set_prop(env, result, "tunName", str) ||
      !set_num(env, result, "port", f->port))
    return NULL;
  return result;

fail:
  err = errno;
  if (efd >= 0) close(efd);
  if (sock >= 0) close(sock);
  if (tun >= 0) close(tun);
  return throw_errno(env, err, what);
}

/* setPeers(handle, Uint32Array [net, mask, publicIP] * n), all host order; replaces the table atomically. */
static napi_value js_set_peers(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  napi_typedarray_type type;
  size_t len;
  void *data;
  if (!get_args(env, info, 2, argv)) return NULL;
  fwd_t *f = get_fwd(env, argv[0]);
  if (!f) return NULL;
  bool is_ta = false;
  napi_is_typedarray(env, argv[1], &is_ta);
  if (!is_ta || napi_get_typedarray_info(env, argv[1], &type, &len, &data, NULL, NULL) != napi_ok ||
      type != napi_uint32_array || len % 3 != 0 || len / 3 > MAX_PEERS) {
    napi_throw_type_error(env, NULL, "peers must be a Uint32Array of [net, mask, publicIP] triples");
    return NULL;
  }
  size_t n = len / 3;
  peer_table_t *t = malloc(sizeof *t + n * sizeof(peer_t));
  if (!t) return throw_errno(env, ENOMEM, "setPeers");
  t->n = n;
  const uint32_t *v = data;
  for (size_t i = 0; i < n; i++) {
    peer_t *p = &t->e[i];
    memset(p, 0, sizeof *p);
    p->mask = v[3 * i + 1];
    p->net = v[3 * i] & p->mask;
    p->dst.sin_family = AF_INET;
    p->dst.sin_port = htons(f->port); /* flanneld: every node uses its own port */
    p->dst.sin_addr.s_addr = htonl(v[3 * i + 2]);
  }
  pthread_mutex_lock(&f->peers_lock);
  peer_table_t *old = f->peers;
  f->peers = t;
  pthread_mutex_unlock(&f->peers_lock);
  free(old); /* safe: the tx thread only touches the table while holding the lock */
  return NULL;
}

static napi_value js_set_tun_address(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  uint32_t addr;
  if (!get_args(env, info, 2, argv)) return NULL;
  fwd_t *f = get_fwd(env, argv[0]);
  if (!f || !get_u32(env, argv[1], &addr)) return NULL;
  atomic_store(&f->tun_addr, addr);
  return NULL;
}

static napi_value js_start(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  fwd_t *f = get_fwd(env, argv[0]);
  if (!f) return NULL;
  if (f->state != ST_OPEN) {
    napi_throw_error(env, "EINVAL", f->state == ST_RUNNING ? "already started" : "forwarder is closed");
    return NULL;
  }
  /* Threads inherit the signal mask: block everything so Node's signal handling stays on its own threads
   * and our poll()/read() calls never see EINTR storms. */
  sigset_t all, saved;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &saved);
  int err = pthread_create(&f->tx_thread, NULL, tx_main, f);
  if (!err) {
    err = pthread_create(&f->rx_thread, NULL, rx_main, f);
    if (err) {
      signal_stop(f);
      pthread_join(f->tx_thread, NULL);
    }
  }
  pthread_sigmask(SIG_SETMASK, &saved, NULL);
  if (err) {
    /* the eventfd may now be signalled: the forwarder cannot be restarted, so close it */
    stop_and_close(env, f);
    return throw_errno(env, err, "pthread_create");
  }
  f->state = ST_RUNNING;
  NAPI_CALL(env, napi_create_reference(env, argv[0], 1, &f->self_ref));
  return NULL;
}

static napi_value js_stop(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  fwd_t *f = get_fwd(env, argv[0]);
  if (f) stop_and_close(env, f);
  return NULL;
}

static napi_value errno_value(napi_env env, counters_t *c) {
  napi_value v;
  int e = atomic_load(&c->fatal_errno);
  const char *name = e ? strerrorname_np(e) : NULL;
  if (!e) NAPI_CALL(env, napi_get_null(env, &v));
  else NAPI_CALL(env, napi_create_string_utf8(env, name ? name : "EUNKNOWN", NAPI_AUTO_LENGTH, &v));
  return v;
}

static napi_value js_stats(napi_env env, napi_callback_info info) {
  napi_value argv[1], o, v;
  if (!get_args(env, info, 1, argv)) return NULL;
  fwd_t *f = get_fwd(env, argv[0]);
  if (!f) return NULL;
  counters_t *t = &f->tx, *r = &f->rx;
  NAPI_CALL(env, napi_create_object(env, &o));
  struct { const char *k; double v; } nums[] = {
      {"txPackets", READ(t->packets)},
      {"txBytes", READ(t->bytes)},
      {"rxPackets", READ(r->packets)},
      {"rxBytes", READ(r->bytes)},
      {"dropNoRoute", READ(t->no_route)},
      {"icmpSent", READ(t->icmp_sent)},
      {"dropTtl", READ(t->drop_ttl) + READ(r->drop_ttl)},
      {"dropRunt", READ(t->drop_runt) + READ(r->drop_runt)},
      {"dropNonIPv4", READ(t->drop_non_ipv4) + READ(r->drop_non_ipv4)},
      {"dropOversize", READ(r->drop_oversize)},
      {"sendErrors", READ(t->send_errors)},
      {"tunWriteErrors", READ(t->tun_write_errors) + READ(r->tun_write_errors)},
  };
  for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
    if (!set_num(env, o, nums[i].k, nums[i].v)) return NULL;
  if (!(v = errno_value(env, t)) || !set_prop(env, o, "txThreadError", v)) return NULL;
  if (!(v = errno_value(env, r)) || !set_prop(env, o, "rxThreadError", v)) return NULL;
  NAPI_CALL(env, napi_get_boolean(env, f->state == ST_RUNNING, &v));
  return set_prop(env, o, "running", v);
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setPeers", NULL, js_set_peers, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setTunAddress", NULL, js_set_tun_address, NULL, NULL, NULL, napi_enumerable, NULL},
      {"start", NULL, js_start, NULL, NULL, NULL, napi_enumerable, NULL},
      {"stop", NULL, js_stop, NULL, NULL, NULL, napi_enumerable, NULL},
      {"stats", NULL, js_stats, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  NAPI_CALL(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
