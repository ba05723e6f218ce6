/* A paced TURN ChannelData load generator for bench/relay (not part of Parley).
 *
 * The bench sets up the TURN clients in Python (allocation, channel bound to the partner's
 * relayed address, socket connected to the server) and passes their sockets, named by fd
 * number on the command line. This program only sends and receives: every socket sends `rate / N` ChannelData messages
 * per second (channel 0x4000, `size` bytes of payload) on its own phase for `seconds`, and
 * counts the ChannelData that comes back (its partner's messages, relayed once). It prints
 * one line: "sent S received R seconds T late L" (L: ticks that started over 2 ms late, a
 * sign that this generator, not the server, was the limit).
 *
 * Why not turnutils_uclient: on this machine it costs ~9 us of CPU per relayed packet and
 * its -z pacing gives ~40 % of the nominal rate, so it cannot load a relay that needs less.
 *
 * `--burst K` first: each socket sends its messages K at a time, back to back (same size,
 * same destination) whenever K are due, the same rate in bursts: a uniform flood whose
 * batches hold runs to one client that UDP GSO can coalesce. K=1 (the default) is the
 * paced load above.
 *
 * Build: gcc -O2 -o blaster blaster.c (the bench does it).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define MAXLEN 2048

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long long received;

static void drain(int fd) {
    static char bufs[BATCH][MAXLEN];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    for (;;) {
        for (int i = 0; i < BATCH; i++) {
            iov[i].iov_base = bufs[i];
            iov[i].iov_len = MAXLEN;
            memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        int n = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            return;
        for (int i = 0; i < n; i++) {
            unsigned char first = (unsigned char)bufs[i][0];
            if (msgs[i].msg_len >= 4 && first >= 0x40 && first < 0x80)
                received++;
        }
        if (n < BATCH)
            return;
    }
}

static void poll_for(int ep, double seconds) {
    struct epoll_event events[256];
    int timeout = seconds > 0 ? (int)(seconds * 1000) : 0;
    int n = epoll_wait(ep, events, 256, timeout);
    for (int i = 0; i < n; i++)
        drain(events[i].data.fd);
}

int main(int argc, char **argv) {
    int burst = 1;
    if (argc > 2 && strcmp(argv[1], "--burst") == 0) {
        burst = atoi(argv[2]);
        argc -= 2;
        argv += 2;
    }
    if (argc < 5 || burst < 1 || burst > 64) {
        fprintf(stderr, "usage: blaster [--burst K] RATE SECONDS SIZE FD...\n");
        return 2;
    }
    double rate = atof(argv[1]), seconds = atof(argv[2]);
    int size = atoi(argv[3]);
    int count = argc - 4;
    int *fds = calloc((size_t)count, sizeof(int));
    for (int i = 0; i < count; i++)
        fds[i] = atoi(argv[4 + i]);
    if (count < 1 || rate <= 0 || seconds <= 0 || size < 4 || size > 1400) {
        fprintf(stderr, "blaster: bad arguments\n");
        return 2;
    }
    unsigned char packet[4 + 1400];
    packet[0] = 0x40;
    packet[1] = 0x00;
    packet[2] = (unsigned char)(size >> 8);
    packet[3] = (unsigned char)(size & 0xff);
    memset(packet + 4, 'x', (size_t)size);
    size_t plen = 4 + (size_t)size;  /* over UDP the padding may be left out */

    int ep = epoll_create1(0);
    double *credit = calloc((size_t)count, sizeof(double));
    for (int i = 0; i < count; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fds[i]};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) != 0) {
            perror("blaster: epoll_ctl");
            return 1;
        }
        credit[i] = (double)i / count;  /* each socket on its own phase */
    }
    double per_socket = rate / count;  /* messages per second per socket */
    const double tick = 0.001;
    long long sent = 0, dropped = 0, late = 0;
    double start = now(), next = start, end = start + seconds;
    while (next < end) {
        double t = now();
        if (t < next) {
            poll_for(ep, next - t);
            continue;
        }
        if (t - next > 0.002)
            late++;
        double elapsed_ticks = (t - next) / tick + 1;
        for (int i = 0; i < count; i++) {
            credit[i] += per_socket * tick * elapsed_ticks;
            while (credit[i] >= (double)burst) {
                credit[i] -= (double)burst;
                for (int k = 0; k < burst; k++) {
                    if (send(fds[i], packet, plen, MSG_DONTWAIT) == (ssize_t)plen)
                        sent++;
                    else
                        dropped++;
                }
            }
        }
        next = t + tick;
        poll_for(ep, 0);
    }
    double took = now() - start;
    double drain_end = now() + 1.0;
    while (now() < drain_end)
        poll_for(ep, 0.05);
    printf("sent %lld received %lld seconds %.3f late %lld dropped %lld\n", sent, received,
           took, late, dropped);
    return 0;
}
