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
#include <netinet/in.h>
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
#include <unistd.h>

#define FWD_MAGIC 0x666c7564u   /* guards against a foreign napi_external being passed in */
#define BUF_SIZE 65536          /* any IPv4 packet / UDP datagram fits, so oversize is detected, not truncated */
#define BURST 64                /* packets handled per poll() wake-up before re-checking the stop fd */
#define MAX_PEERS (1u << 20)    /* bounds setPeers() memory; a /8 network of /24 leases is 65536 */
#define SOCK_BUF (4 << 20)      /* socket buffers: absorb bursts while the rx thread waits for a core */

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
} fwd_t;

/* ---------------------------------------------------------------- packet helpers */

static inline uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }
static inline void put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v & 0xff; }
static inline void put32(uint8_t *p, uint32_t v) { put16(p, v >> 16); put16(p + 2, v & 0xffff); }

/* RFC 1071 Internet checksum, returned in host order. */
static uint16_t inet_csum(const uint8_t *p, size_t len) {
  uint32_t sum = 0;
  for (; len > 1; p += 2, len -= 2) sum += get16(p);
  if (len) sum += (uint32_t)p[0] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
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
  if (write(f->tun_fd, pkt, len) < 0)
    BUMP(f->tx.tun_write_errors, 1);
  else
    BUMP(f->tx.icmp_sent, 1);
}

static void tx_packet(fwd_t *f, uint8_t *pkt, size_t n) {
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
  if (sendto(f->sock_fd, pkt, n, 0, (struct sockaddr *)&to, sizeof to) < 0) {
    BUMP(c->send_errors, 1);
    return;
  }
  BUMP(c->packets, 1);
  BUMP(c->bytes, n);
}

static void rx_packet(fwd_t *f, uint8_t *pkt, size_t n) {
  counters_t *c = &f->rx;
  /* The sender is not validated (flanneld doesn't either); only what the TUN could not take is filtered.
   * flanneld does not check the version; we drop and count non-IPv4 so garbage never reaches the kernel. */
  if (n < 20) { BUMP(c->drop_runt, 1); return; }
  if (pkt[0] >> 4 != 4) { BUMP(c->drop_non_ipv4, 1); return; }
  if (n > f->mtu) { BUMP(c->drop_oversize, 1); return; }
  if (!decrement_ttl(pkt)) { BUMP(c->drop_ttl, 1); return; }
  if (write(f->tun_fd, pkt, n) < 0) { BUMP(c->tun_write_errors, 1); return; }
  BUMP(c->packets, 1);
  BUMP(c->bytes, n);
}

/* ---------------------------------------------------------------- threads */

/* One loop for both directions: they differ only in the fd, the read call and the per-packet function. */
static void run_loop(fwd_t *f, int is_tx) {
  uint8_t buf[BUF_SIZE]; /* on the thread's stack: no allocation on the packet path */
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
      ssize_t n = is_tx ? read(fd, buf, sizeof buf) : recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n >= 0) {
        (is_tx ? tx_packet : rx_packet)(f, buf, (size_t)n);
        continue;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      /* A UDP socket reports transient conditions (ICMP errors, memory pressure) through recv; those
       * are consumed by the failing call. A TUN read error (e.g. EBADFD: device deleted) is permanent,
       * and looping on it would spin a core, so the thread ends and stats() reports why. */
      if (is_tx || errno == EBADF || errno == ENOTSOCK || errno == EFAULT || errno == EINVAL) {
        atomic_store(&c->fatal_errno, errno);
        return;
      }
      break;
    }
  }
}

static void *tx_main(void *arg) { run_loop((fwd_t *)arg, 1); return NULL; }
static void *rx_main(void *arg) { run_loop((fwd_t *)arg, 0); return NULL; }

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
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI; /* non-persistent: the device dies with the fd */
  memcpy(ifr.ifr_name, name, name_len + 1);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(addr)};
  socklen_t sa_len = sizeof sa;

  what = "open /dev/net/tun";
  if ((tun = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK)) < 0) goto fail;
  char tun_what[48];
  snprintf(tun_what, sizeof tun_what, "create TUN device %s", name);
  what = tun_what;
  if (ioctl(tun, TUNSETIFF, &ifr) < 0) goto fail;
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
