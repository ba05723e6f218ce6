/* The relay's compiled packet path (optional; services/relay/fastpath.py picks it or not).
 *
 * Meter:  an allocation's bandwidth token bucket and relayed counters (same attributes and
 *         `spend` as services/relay/turn/meter.py), shared by the Python core and this path.
 * Routes: a cache of FastRoute entries (the core computes them, see TurnServer.fast_route)
 *         keyed by (client address, channel number), and `drain(fd, now)`, which reads a
 *         batch of datagrams with recvmmsg from the non-blocking listening socket, relays
 *         the ChannelData that has a valid route (header rewritten in place for in-process
 *         delivery, sent with one sendmmsg; payload sent from the relayed socket otherwise)
 *         and returns every other datagram as (bytes, (host, port)) for the Python path.
 *         With `gso` set, a batch's consecutive datagrams to one destination of one size (the
 *         last of a run may be shorter) leave as one UDP_SEGMENT super-datagram (UDP GSO),
 *         which the kernel cuts back into the same datagrams; a kernel that refuses it turns
 *         `gso` off for this Routes and the batch goes out plainly.
 * parse_channel_data / pack_channel_data: the ChannelData codec, for tests against Python.
 *
 * Linux only. The STUN/TURN control path stays in Python.
 */
#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE
#include <Python.h>
#include <structmember.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#define BATCH 32
#define BUFSZ 65536

/* UDP GSO (Linux 4.18+): a cmsg at SOL_UDP carrying the segment size as a uint16_t. */
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#define GSO_MAX_SEGS 64      /* UDP_MAX_SEGMENTS of older kernels */
#define GSO_MAX_BYTES 65000  /* payload of one super-datagram */
#define GSO_MAX_SEG 1400     /* segments must fit the path MTU (EINVAL otherwise): stay under
                                1500 minus IPv6+UDP headers, tunnels aside */

/* ---------------------------------------------------------------- Meter */

typedef struct {
    PyObject_HEAD
    double rate, tokens, stamp;
    long long packets_in, packets_out, bytes_in, bytes_out;
} Meter;

static PyTypeObject MeterType;

static inline int meter_spend(Meter *m, double size, double now) {
    double rate = m->rate, tokens;
    if (rate <= 0) return 1;
    tokens = m->tokens + (now - m->stamp) * rate;
    if (tokens > rate) tokens = rate;
    m->stamp = now;
    if (tokens < size) {
        m->tokens = tokens;
        return 0;
    }
    m->tokens = tokens - size;
    return 1;
}

static int Meter_init(Meter *self, PyObject *args, PyObject *kw) {
    double rate, now;
    static char *names[] = {"rate", "now", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "dd", names, &rate, &now)) return -1;
    self->rate = rate;
    self->tokens = rate;
    self->stamp = now;
    self->packets_in = self->packets_out = self->bytes_in = self->bytes_out = 0;
    return 0;
}

static PyObject *Meter_spend(Meter *self, PyObject *const *args, Py_ssize_t n) {
    double size, now;
    if (n != 2) {
        PyErr_SetString(PyExc_TypeError, "spend(size, now)");
        return NULL;
    }
    size = PyFloat_AsDouble(args[0]);
    now = PyFloat_AsDouble(args[1]);
    if (PyErr_Occurred()) return NULL;
    return PyBool_FromLong(meter_spend(self, size, now));
}

static PyMethodDef Meter_methods[] = {
    {"spend", (PyCFunction)(void (*)(void))Meter_spend, METH_FASTCALL,
     "Take size bytes from the bucket if they are there."},
    {NULL}};

static PyMemberDef Meter_members[] = {
    {"rate", T_DOUBLE, offsetof(Meter, rate), 0, NULL},
    {"tokens", T_DOUBLE, offsetof(Meter, tokens), 0, NULL},
    {"stamp", T_DOUBLE, offsetof(Meter, stamp), 0, NULL},
    {"packets_in", T_LONGLONG, offsetof(Meter, packets_in), 0, NULL},
    {"packets_out", T_LONGLONG, offsetof(Meter, packets_out), 0, NULL},
    {"bytes_in", T_LONGLONG, offsetof(Meter, bytes_in), 0, NULL},
    {"bytes_out", T_LONGLONG, offsetof(Meter, bytes_out), 0, NULL},
    {NULL}};

static PyTypeObject MeterType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "services.relay._fastpath.Meter",
    .tp_basicsize = sizeof(Meter),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Bandwidth token bucket and relayed counters of one allocation.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Meter_init,
    .tp_methods = Meter_methods,
    .tp_members = Meter_members,
};

/* ---------------------------------------------------------------- addresses */

typedef struct {
    uint16_t family, port, channel, pad;
    uint8_t addr[16];
} Key; /* 24 bytes, zero-padded */

static int key_from_sockaddr(Key *k, const struct sockaddr_storage *ss, uint16_t channel) {
    memset(k, 0, sizeof(*k));
    k->channel = channel;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        k->family = AF_INET;
        k->port = a->sin_port;
        memcpy(k->addr, &a->sin_addr, 4);
        return 0;
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        k->family = AF_INET6;
        k->port = a->sin6_port;
        memcpy(k->addr, &a->sin6_addr, 16);
        return 0;
    }
    return -1;
}

/* (host, port) -> sockaddr; -1 with a Python error set. */
static int sockaddr_from_tuple(PyObject *t, struct sockaddr_storage *ss, socklen_t *len) {
    const char *host;
    int port;
    memset(ss, 0, sizeof(*ss));
    if (!PyArg_ParseTuple(t, "si", &host, &port)) return -1;
    if (port < 0 || port > 65535) {
        PyErr_SetString(PyExc_ValueError, "port out of range");
        return -1;
    }
    if (strchr(host, ':') != NULL) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1) goto bad;
        *len = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, host, &a->sin_addr) != 1) goto bad;
        *len = sizeof(*a);
    }
    return 0;
bad:
    PyErr_SetString(PyExc_ValueError, "not an IP address");
    return -1;
}

static PyObject *tuple_from_sockaddr(const struct sockaddr_storage *ss) {
    char host[INET6_ADDRSTRLEN];
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        return Py_BuildValue("(si)", host, ntohs(a->sin6_port));
    }
    const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
    return Py_BuildValue("(si)", host, ntohs(a->sin_port));
}

/* ---------------------------------------------------------------- Routes */

typedef struct {
    Key key;
    int used, local, fd;
    uint16_t channel;
    double valid_until;
    struct sockaddr_storage dest;
    socklen_t destlen;
    Meter *src, *dst;
} Route;

typedef struct {
    PyObject_HEAD
    Route *table;
    size_t capacity, count;
    uint8_t *bufs;
    struct mmsghdr in[BATCH], out[BATCH];
    struct iovec in_iov[BATCH], out_iov[BATCH];
    struct sockaddr_storage in_addr[BATCH];
    struct mmsghdr gout[BATCH]; /* the batch regrouped for GSO */
    unsigned gfirst[BATCH];     /* index in `out` of each gout's first datagram */
    union {
        char buf[CMSG_SPACE(sizeof(uint16_t))];
        struct cmsghdr align;
    } gctl[BATCH];
    long long local_delivered, forwarded, dropped, batches, gso_sent, gso_segments;
    int last;
    char gso;
} Routes;

static PyTypeObject RoutesType;

static inline uint64_t key_hash(const Key *k) {
    const uint8_t *p = (const uint8_t *)k;
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < sizeof(Key); i++) h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

static Route *routes_find(Routes *r, const Key *k) {
    size_t mask = r->capacity - 1, i = key_hash(k) & mask;
    for (;;) {
        Route *e = &r->table[i];
        if (!e->used) return NULL;
        if (memcmp(&e->key, k, sizeof(Key)) == 0) return e;
        i = (i + 1) & mask;
    }
}

static void route_release(Route *e) {
    Py_CLEAR(e->src);
    Py_CLEAR(e->dst);
    e->used = 0;
}

static void routes_clear_all(Routes *r) {
    for (size_t i = 0; i < r->capacity; i++)
        if (r->table[i].used) route_release(&r->table[i]);
    r->count = 0;
}

static int routes_alloc(Routes *r, size_t capacity) {
    Route *t = PyMem_Calloc(capacity, sizeof(Route));
    if (t == NULL) return -1;
    r->table = t;
    r->capacity = capacity;
    r->count = 0;
    return 0;
}

static int Routes_init(Routes *self, PyObject *args, PyObject *kw) {
    if (self->table == NULL && routes_alloc(self, 1024) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    if (self->bufs == NULL) {
        self->bufs = PyMem_Malloc((size_t)BATCH * BUFSZ);
        if (self->bufs == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    }
    return 0;
}

static void Routes_dealloc(Routes *self) {
    if (self->table != NULL) {
        routes_clear_all(self);
        PyMem_Free(self->table);
    }
    PyMem_Free(self->bufs);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Insert or replace; grows at 50 % load (entries move, references stay). */
static int routes_put(Routes *r, const Route *src) {
    if ((r->count + 1) * 2 > r->capacity) {
        Route *old = r->table;
        size_t oldcap = r->capacity;
        if (routes_alloc(r, oldcap * 2) < 0) {
            r->table = old;
            r->capacity = oldcap;
            return -1;
        }
        for (size_t i = 0; i < oldcap; i++) {
            if (!old[i].used) continue;
            size_t mask = r->capacity - 1, j = key_hash(&old[i].key) & mask;
            while (r->table[j].used) j = (j + 1) & mask;
            r->table[j] = old[i];
            r->count++;
        }
        PyMem_Free(old);
    }
    size_t mask = r->capacity - 1, i = key_hash(&src->key) & mask;
    for (;;) {
        Route *e = &r->table[i];
        if (!e->used) {
            *e = *src;
            r->count++;
            return 0;
        }
        if (memcmp(&e->key, &src->key, sizeof(Key)) == 0) {
            route_release(e);
            *e = *src;
            return 0;
        }
        i = (i + 1) & mask;
    }
}

/* add(client, channel, local, fd, dest, out_channel, valid_until, src, dst) */
static PyObject *Routes_add(Routes *self, PyObject *args) {
    PyObject *client, *dest, *src, *dst;
    int channel, local, fd, out_channel;
    double valid_until;
    struct sockaddr_storage ss;
    socklen_t len = 0;
    Route e;
    if (!PyArg_ParseTuple(args, "OipiOidO!O", &client, &channel, &local, &fd, &dest,
                          &out_channel, &valid_until, &MeterType, &src, &dst))
        return NULL;
    if (dst != Py_None && !PyObject_TypeCheck(dst, &MeterType)) {
        PyErr_SetString(PyExc_TypeError, "dst must be a Meter or None");
        return NULL;
    }
    if (local && dst == Py_None) {
        PyErr_SetString(PyExc_ValueError, "a local route needs dst");
        return NULL;
    }
    if (channel < 0 || channel > 0xFFFF || out_channel < 0 || out_channel > 0xFFFF) {
        PyErr_SetString(PyExc_ValueError, "channel out of range");
        return NULL;
    }
    memset(&e, 0, sizeof(e));
    if (sockaddr_from_tuple(client, &ss, &len) < 0) return NULL;
    key_from_sockaddr(&e.key, &ss, (uint16_t)channel);
    if (sockaddr_from_tuple(dest, &e.dest, &e.destlen) < 0) return NULL;
    e.used = 1;
    e.local = local;
    e.fd = fd;
    e.channel = (uint16_t)out_channel;
    e.valid_until = valid_until;
    Py_INCREF(src);
    e.src = (Meter *)src;
    if (dst != Py_None) {
        Py_INCREF(dst);
        e.dst = (Meter *)dst;
    }
    if (routes_put(self, &e) < 0) {
        Py_XDECREF(e.src);
        Py_XDECREF(e.dst);
        return PyErr_NoMemory();
    }
    Py_RETURN_NONE;
}

static PyObject *Routes_clear(Routes *self, PyObject *unused) {
    routes_clear_all(self);
    Py_RETURN_NONE;
}

/* out[from..n) with sendmmsg, one datagram per message. */
static void send_plain(Routes *r, int fd, unsigned from, unsigned n) {
    unsigned i = from;
    while (i < n) {
        int sent = sendmmsg(fd, &r->out[i], n - i, 0);
        if (sent > 0) {
            i += (unsigned)sent;
        } else if (sent < 0 && errno == EINTR) {
            continue;
        } else { /* EAGAIN or an ICMP error: this datagram is lost, as UDP may be */
            r->dropped++;
            i++;
        }
    }
}

static inline int same_dest(const struct msghdr *a, const struct msghdr *b) {
    return a->msg_namelen == b->msg_namelen &&
           (a->msg_name == b->msg_name || memcmp(a->msg_name, b->msg_name, a->msg_namelen) == 0);
}

/* Regroup out[0..n) into gout: a run of consecutive datagrams to one destination, all of
 * the first one's size but the last, which may be shorter, becomes one message whose iovecs
 * are the run's (out_iov is contiguous: out[k] uses out_iov[k]) with a UDP_SEGMENT cmsg.
 * Returns the number of messages in gout. */
static unsigned gso_group(Routes *r, unsigned n) {
    unsigned g = 0, i = 0;
    while (i < n) {
        const struct msghdr *h = &r->out[i].msg_hdr;
        size_t seg = r->out_iov[i].iov_len, total = seg;
        unsigned j = i + 1;
        if (seg <= GSO_MAX_SEG) {
            while (j < n && j - i < GSO_MAX_SEGS) {
                size_t len = r->out_iov[j].iov_len;
                if (len > seg || len == 0 || total + len > GSO_MAX_BYTES ||
                    !same_dest(h, &r->out[j].msg_hdr))
                    break;
                total += len;
                j++;
                if (len < seg) break; /* a shorter datagram ends the run */
            }
        }
        struct msghdr *o = &r->gout[g].msg_hdr;
        *o = *h;
        o->msg_iov = &r->out_iov[i];
        o->msg_iovlen = j - i;
        if (j - i > 1) {
            struct cmsghdr *c;
            uint16_t size = (uint16_t)seg;
            memset(&r->gctl[g], 0, sizeof(r->gctl[g]));
            o->msg_control = r->gctl[g].buf;
            o->msg_controllen = sizeof(r->gctl[g].buf);
            c = CMSG_FIRSTHDR(o);
            c->cmsg_level = SOL_UDP;
            c->cmsg_type = UDP_SEGMENT;
            c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
            memcpy(CMSG_DATA(c), &size, sizeof(size));
        } else {
            o->msg_control = NULL;
            o->msg_controllen = 0;
        }
        r->gfirst[g] = i;
        g++;
        i = j;
    }
    return g;
}

/* Send out[0..n): coalesced with UDP GSO when `gso` is on, else one datagram each. A kernel
 * that refuses GSO (EIO, EINVAL, ENOPROTOOPT, EOPNOTSUPP on a super-datagram) turns `gso`
 * off for this Routes, and the rest of the batch goes out plainly: nothing is lost to it. */
static void send_batch(Routes *r, int fd, unsigned n) {
    unsigned g, k = 0;
    if (!r->gso || n < 2) {
        send_plain(r, fd, 0, n);
        return;
    }
    g = gso_group(r, n);
    if (g == n) { /* nothing to coalesce */
        send_plain(r, fd, 0, n);
        return;
    }
    while (k < g) {
        int sent = sendmmsg(fd, &r->gout[k], g - k, 0);
        if (sent > 0) {
            for (unsigned m = k; m < k + (unsigned)sent; m++) {
                size_t segs = r->gout[m].msg_hdr.msg_iovlen;
                if (segs > 1) {
                    r->gso_sent++;
                    r->gso_segments += (long long)segs;
                }
            }
            k += (unsigned)sent;
        } else if (sent < 0 && errno == EINTR) {
            continue;
        } else if (sent < 0 && r->gout[k].msg_hdr.msg_iovlen > 1 &&
                   (errno == EIO || errno == EINVAL || errno == ENOPROTOOPT ||
                    errno == EOPNOTSUPP)) {
            r->gso = 0;
            send_plain(r, fd, r->gfirst[k], n);
            return;
        } else { /* EAGAIN or an ICMP error: these datagrams are lost, as UDP may be */
            r->dropped += (long long)r->gout[k].msg_hdr.msg_iovlen;
            k++;
        }
    }
}

/* add_peer(relayed_port, peer, client, channel, valid_until, meter): datagrams from `peer`
 * on the relayed socket bound to `relayed_port` go to `client` as ChannelData on `channel`. */
static PyObject *Routes_add_peer(Routes *self, PyObject *args) {
    PyObject *peer, *client, *meter;
    int port, channel;
    double valid_until;
    struct sockaddr_storage ss;
    socklen_t len = 0;
    Route e;
    if (!PyArg_ParseTuple(args, "iOOidO!", &port, &peer, &client, &channel, &valid_until,
                          &MeterType, &meter))
        return NULL;
    if (port < 0 || port > 0xFFFF || channel < 0x4000 || channel > 0x7FFF) {
        PyErr_SetString(PyExc_ValueError, "port or channel out of range");
        return NULL;
    }
    memset(&e, 0, sizeof(e));
    if (sockaddr_from_tuple(peer, &ss, &len) < 0) return NULL;
    key_from_sockaddr(&e.key, &ss, 0); /* channel 0: never a client's ChannelData key */
    e.key.pad = (uint16_t)port;
    if (sockaddr_from_tuple(client, &e.dest, &e.destlen) < 0) return NULL;
    e.used = 1;
    e.local = 2;
    e.fd = -1;
    e.channel = (uint16_t)channel;
    e.valid_until = valid_until;
    Py_INCREF(meter);
    e.dst = (Meter *)meter;
    if (routes_put(self, &e) < 0) {
        Py_DECREF(meter);
        return PyErr_NoMemory();
    }
    Py_RETURN_NONE;
}

static void prepare_in(Routes *self, size_t headroom) {
    for (int i = 0; i < BATCH; i++) {
        self->in_iov[i].iov_base = self->bufs + (size_t)i * BUFSZ + headroom;
        self->in_iov[i].iov_len = BUFSZ - headroom;
        memset(&self->in[i].msg_hdr, 0, sizeof(struct msghdr));
        self->in[i].msg_hdr.msg_iov = &self->in_iov[i];
        self->in[i].msg_hdr.msg_iovlen = 1;
        self->in[i].msg_hdr.msg_name = &self->in_addr[i];
        self->in[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_storage);
    }
}

/* drain_peer(fd, relayed_port, client_fd, now): a batch from a relayed socket; datagrams
 * from a peer with a route go to the client as ChannelData (header written in the 4 bytes
 * of headroom) through client_fd in one sendmmsg; the rest come back as (bytes, addr). */
static PyObject *Routes_drain_peer(Routes *self, PyObject *const *args, Py_ssize_t nargs) {
    int fd, port, client_fd, got;
    double now;
    unsigned nout = 0;
    PyObject *slow;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "drain_peer(fd, relayed_port, client_fd, now)");
        return NULL;
    }
    fd = (int)PyLong_AsLong(args[0]);
    port = (int)PyLong_AsLong(args[1]);
    client_fd = (int)PyLong_AsLong(args[2]);
    now = PyFloat_AsDouble(args[3]);
    if (PyErr_Occurred()) return NULL;
    prepare_in(self, 4);
    do {
        got = recvmmsg(fd, self->in, BATCH, MSG_DONTWAIT, NULL);
    } while (got < 0 && errno == EINTR);
    self->last = got > 0 ? got : 0;
    slow = PyList_New(0);
    if (slow == NULL) return NULL;
    if (got <= 0) return slow;
    self->batches++;
    for (int i = 0; i < got; i++) {
        uint8_t *p = self->bufs + (size_t)i * BUFSZ;
        size_t n = self->in[i].msg_len;
        const struct sockaddr_storage *from = &self->in_addr[i];
        Key k;
        Route *e;
        if (self->in[i].msg_hdr.msg_flags & MSG_TRUNC) continue;
        if (self->count && n <= 0xFFFF && key_from_sockaddr(&k, from, 0) == 0) {
            k.pad = (uint16_t)port;
            e = routes_find(self, &k);
            if (e != NULL && now < e->valid_until) {
                if (!meter_spend(e->dst, (double)n, now)) {
                    self->dropped++;
                    continue;
                }
                e->dst->packets_in++;
                e->dst->bytes_in += (long long)n;
                p[0] = (uint8_t)(e->channel >> 8);
                p[1] = (uint8_t)(e->channel & 0xFF);
                p[2] = (uint8_t)(n >> 8);
                p[3] = (uint8_t)(n & 0xFF);
                self->out_iov[nout].iov_base = p;
                self->out_iov[nout].iov_len = 4 + n;
                memset(&self->out[nout].msg_hdr, 0, sizeof(struct msghdr));
                self->out[nout].msg_hdr.msg_iov = &self->out_iov[nout];
                self->out[nout].msg_hdr.msg_iovlen = 1;
                self->out[nout].msg_hdr.msg_name = &e->dest;
                self->out[nout].msg_hdr.msg_namelen = e->destlen;
                nout++;
                self->forwarded++;
                continue;
            }
        }
        PyObject *data = PyBytes_FromStringAndSize((const char *)p + 4, (Py_ssize_t)n);
        PyObject *addr = data ? tuple_from_sockaddr(from) : NULL;
        PyObject *item = addr ? PyTuple_Pack(2, data, addr) : NULL;
        Py_XDECREF(data);
        Py_XDECREF(addr);
        if (item == NULL || PyList_Append(slow, item) < 0) {
            Py_XDECREF(item);
            if (nout) send_batch(self, client_fd, nout);
            Py_DECREF(slow);
            return NULL;
        }
        Py_DECREF(item);
    }
    if (nout) send_batch(self, client_fd, nout);
    return slow;
}

/* drain(fd, now) -> list[(bytes, (host, port))] of the datagrams for the Python path. */
static PyObject *Routes_drain(Routes *self, PyObject *const *args, Py_ssize_t nargs) {
    int fd, got;
    double now;
    unsigned nout = 0;
    PyObject *slow;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "drain(fd, now)");
        return NULL;
    }
    fd = (int)PyLong_AsLong(args[0]);
    now = PyFloat_AsDouble(args[1]);
    if (PyErr_Occurred()) return NULL;
    prepare_in(self, 0);
    do {
        got = recvmmsg(fd, self->in, BATCH, MSG_DONTWAIT, NULL);
    } while (got < 0 && errno == EINTR);
    self->last = got > 0 ? got : 0;
    slow = PyList_New(0);
    if (slow == NULL) return NULL;
    if (got <= 0) return slow; /* EAGAIN: nothing (more) to read */
    self->batches++;
    for (int i = 0; i < got; i++) {
        uint8_t *p = self->bufs + (size_t)i * BUFSZ;
        size_t n = self->in[i].msg_len;
        const struct sockaddr_storage *from = &self->in_addr[i];
        if (self->in[i].msg_hdr.msg_flags & MSG_TRUNC) continue; /* over 64 KiB: not TURN */
        if (n >= 4 && p[0] >= 0x40 && p[0] < 0x80 && self->count) {
            Key k;
            Route *e;
            size_t len = ((size_t)p[2] << 8) | p[3];
            if (key_from_sockaddr(&k, from, (uint16_t)((p[0] << 8) | p[1])) == 0 &&
                (e = routes_find(self, &k)) != NULL && now < e->valid_until && 4 + len <= n) {
                if (!meter_spend(e->src, (double)len, now)) {
                    self->dropped++;
                    continue;
                }
                e->src->packets_out++;
                e->src->bytes_out += (long long)len;
                if (e->local) {
                    if (!meter_spend(e->dst, (double)len, now)) {
                        self->dropped++;
                        continue;
                    }
                    e->dst->packets_in++;
                    e->dst->bytes_in += (long long)len;
                    p[0] = (uint8_t)(e->channel >> 8);
                    p[1] = (uint8_t)(e->channel & 0xFF);
                    self->out_iov[nout].iov_base = p;
                    self->out_iov[nout].iov_len = 4 + len;
                    memset(&self->out[nout].msg_hdr, 0, sizeof(struct msghdr));
                    self->out[nout].msg_hdr.msg_iov = &self->out_iov[nout];
                    self->out[nout].msg_hdr.msg_iovlen = 1;
                    self->out[nout].msg_hdr.msg_name = &e->dest;
                    self->out[nout].msg_hdr.msg_namelen = e->destlen;
                    nout++;
                    self->local_delivered++;
                } else {
                    ssize_t s;
                    do {
                        s = sendto(e->fd, p + 4, len, MSG_DONTWAIT,
                                   (const struct sockaddr *)&e->dest, e->destlen);
                    } while (s < 0 && errno == EINTR);
                    if (s < 0)
                        self->dropped++;
                    else
                        self->forwarded++;
                }
                continue;
            }
        }
        PyObject *data = PyBytes_FromStringAndSize((const char *)p, (Py_ssize_t)n);
        PyObject *addr = data ? tuple_from_sockaddr(from) : NULL;
        PyObject *item = addr ? PyTuple_Pack(2, data, addr) : NULL;
        Py_XDECREF(data);
        Py_XDECREF(addr);
        if (item == NULL || PyList_Append(slow, item) < 0) {
            Py_XDECREF(item);
            if (nout) send_batch(self, fd, nout);
            Py_DECREF(slow);
            return NULL;
        }
        Py_DECREF(item);
    }
    if (nout) send_batch(self, fd, nout);
    return slow;
}

static PyObject *Routes_len(Routes *self, PyObject *unused) {
    return PyLong_FromSize_t(self->count);
}

static PyMethodDef Routes_methods[] = {
    {"add", (PyCFunction)Routes_add, METH_VARARGS,
     "add(client, channel, local, fd, dest, out_channel, valid_until, src, dst)"},
    {"add_peer", (PyCFunction)Routes_add_peer, METH_VARARGS,
     "add_peer(relayed_port, peer, client, channel, valid_until, meter)"},
    {"drain_peer", (PyCFunction)(void (*)(void))Routes_drain_peer, METH_FASTCALL,
     "drain_peer(fd, relayed_port, client_fd, now): a relayed socket's batch."},
    {"clear", (PyCFunction)Routes_clear, METH_NOARGS, "Forget every route."},
    {"drain", (PyCFunction)(void (*)(void))Routes_drain, METH_FASTCALL,
     "drain(fd, now): relay a batch, return the rest as [(bytes, (host, port))]."},
    {"size", (PyCFunction)Routes_len, METH_NOARGS, "Routes cached."},
    {NULL}};

static PyMemberDef Routes_members[] = {
    {"local_delivered", T_LONGLONG, offsetof(Routes, local_delivered), READONLY, NULL},
    {"forwarded", T_LONGLONG, offsetof(Routes, forwarded), READONLY, NULL},
    {"dropped", T_LONGLONG, offsetof(Routes, dropped), READONLY, NULL},
    {"batches", T_LONGLONG, offsetof(Routes, batches), READONLY, NULL},
    {"last", T_INT, offsetof(Routes, last), READONLY, "datagrams read by the last drain"},
    {"gso", T_BOOL, offsetof(Routes, gso), 0,
     "coalesce runs to one destination with UDP GSO (turns itself off if the kernel refuses)"},
    {"gso_sent", T_LONGLONG, offsetof(Routes, gso_sent), READONLY,
     "super-datagrams sent with UDP_SEGMENT"},
    {"gso_segments", T_LONGLONG, offsetof(Routes, gso_segments), READONLY,
     "datagrams they carried"},
    {NULL}};

static PyTypeObject RoutesType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "services.relay._fastpath.Routes",
    .tp_basicsize = sizeof(Routes),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Cached ChannelData routes and the batched receive/relay loop.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Routes_init,
    .tp_dealloc = (destructor)Routes_dealloc,
    .tp_methods = Routes_methods,
    .tp_members = Routes_members,
};

/* ---------------------------------------------------------------- codec */

/* parse_channel_data(data, channel_max=0x4FFF) -> (channel, payload) | None */
static PyObject *parse_channel_data(PyObject *mod, PyObject *args) {
    Py_buffer b;
    int channel_max = 0x4FFF;
    PyObject *out = NULL;
    if (!PyArg_ParseTuple(args, "y*|i", &b, &channel_max)) return NULL;
    if (b.len >= 4) {
        const uint8_t *p = b.buf;
        int channel = (p[0] << 8) | p[1];
        Py_ssize_t len = ((Py_ssize_t)p[2] << 8) | p[3];
        if (channel >= 0x4000 && channel <= channel_max && 4 + len <= b.len)
            out = Py_BuildValue("(iy#)", channel, (const char *)p + 4, len);
    }
    PyBuffer_Release(&b);
    if (out == NULL && !PyErr_Occurred()) Py_RETURN_NONE;
    return out;
}

/* pack_channel_data(channel, payload, pad=False) -> bytes */
static PyObject *pack_channel_data(PyObject *mod, PyObject *args, PyObject *kw) {
    static char *names[] = {"channel", "payload", "pad", NULL};
    Py_buffer b;
    int channel, pad = 0;
    PyObject *out;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "iy*|$p", names, &channel, &b, &pad)) return NULL;
    if (channel < 0 || channel > 0xFFFF || b.len > 0xFFFF) {
        PyBuffer_Release(&b);
        PyErr_SetString(PyExc_ValueError, "channel or length out of range");
        return NULL;
    }
    Py_ssize_t extra = pad ? (-b.len) & 3 : 0;
    out = PyBytes_FromStringAndSize(NULL, 4 + b.len + extra);
    if (out != NULL) {
        uint8_t *p = (uint8_t *)PyBytes_AS_STRING(out);
        p[0] = (uint8_t)(channel >> 8);
        p[1] = (uint8_t)channel;
        p[2] = (uint8_t)(b.len >> 8);
        p[3] = (uint8_t)b.len;
        memcpy(p + 4, b.buf, (size_t)b.len);
        memset(p + 4 + b.len, 0, (size_t)extra);
    }
    PyBuffer_Release(&b);
    return out;
}

static PyMethodDef module_methods[] = {
    {"parse_channel_data", parse_channel_data, METH_VARARGS,
     "(channel, payload) of a ChannelData message, or None if malformed."},
    {"pack_channel_data", (PyCFunction)(void (*)(void))pack_channel_data,
     METH_VARARGS | METH_KEYWORDS, "A ChannelData message (pad to 4 bytes on streams)."},
    {NULL}};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fastpath", "The relay's compiled packet path.", -1, module_methods};

PyMODINIT_FUNC PyInit__fastpath(void) {
    PyObject *m;
    if (PyType_Ready(&MeterType) < 0 || PyType_Ready(&RoutesType) < 0) return NULL;
    m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&MeterType);
    Py_INCREF(&RoutesType);
    if (PyModule_AddObject(m, "Meter", (PyObject *)&MeterType) < 0 ||
        PyModule_AddObject(m, "Routes", (PyObject *)&RoutesType) < 0 ||
        PyModule_AddIntConstant(m, "BATCH", BATCH) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
