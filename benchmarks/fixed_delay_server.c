/* A fixed-delay HTTP/1.1 server for benchmarks/bench_load.py: every request is answered
 * DELAY_MS after it arrived, so a load generator's latency minus DELAY_MS is its own error.
 *
 * Usage: fixed_delay_server PORT [DELAY_MS]      (bench_load.py compiles it with cc -O2)
 *
 * Why C and not the node server beside it (fixed_delay_server.js): a ruler has to be finer
 * than what it measures. node's timers are whole milliseconds, so the node server spins on
 * setImmediate through the last 2 ms of every request; at 1,000 req/s that keeps its core
 * ~97 % busy and its own hold wanders 0.3-2.8 ms over D at p99 from one run to the next,
 * whichever client drives it (k6 and assay alike). Here one epoll loop waits on one timerfd
 * armed at the absolute due time of the oldest pending answer (the delay is the same for
 * every request, so arrival order is due order and a FIFO is the whole schedule); the
 * timer slack is set to 1 ns, so the kernel's hrtimer wakes the loop within tens of
 * microseconds of D while the core is otherwise idle.
 *
 * What the server really held each request (from reading its last header byte to the
 * answer's write) is kept and reported at GET /stats as JSON ({served, count, hold_ms:
 * {p50, p99, max}}; /stats?reset=1 clears it after answering): the floor of every client's
 * error. GET /nginx-status answers in nginx's stub_status format so bench_markov's Sampler
 * counts the requests served. Requests with a Content-Length body are read whole; any
 * malformed input closes the connection. Loopback benchmark tool, not a web server.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_FD 65536
#define IN_CAP 16384
#define QUEUE_CAP (1 << 20)

static const char OK_RESPONSE[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n";

struct conn {
    int open;
    uint32_t generation;  /* bumped on close, so queued answers for a dead fd are dropped */
    size_t len;
    char in[IN_CAP];
};

struct pending {
    int fd;
    uint32_t generation;
    int close_after;
    uint64_t arrived_ns;
};

static struct conn *conns[MAX_FD];
static struct pending *queue;
static size_t q_head, q_len;
static uint64_t *holds;
static size_t holds_len, holds_cap;
static uint64_t served, accepted;
static uint64_t delay_ns;
static double delay_ms;
static int epfd, timerfd_;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void arm_timer(void) {
    struct itimerspec spec = {0};
    if (q_len > 0) {
        uint64_t due = queue[q_head].arrived_ns + delay_ns;
        spec.it_value.tv_sec = (time_t)(due / 1000000000ull);
        spec.it_value.tv_nsec = (long)(due % 1000000000ull);
        if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) spec.it_value.tv_nsec = 1;
    }
    timerfd_settime(timerfd_, TFD_TIMER_ABSTIME, &spec, NULL);
}

static void close_conn(int fd) {
    struct conn *c = conns[fd];
    if (c && c->open) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
        close(fd);
        c->open = 0;
        c->generation++;
        c->len = 0;
    }
}

/* Loopback answers are small; a short write means the client stopped reading: drop it. */
static void write_all(int fd, const char *data, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) { close_conn(fd); return; }
        data += n;
        len -= (size_t)n;
    }
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static double percentile_ms(const uint64_t *sorted, size_t n, double p) {
    if (n == 0) return 0.0;
    long rank = (long)((p / 100.0) * (double)n + 0.999999999) - 1;
    if (rank < 0) rank = 0;
    if ((size_t)rank >= n) rank = (long)n - 1;
    return (double)sorted[rank] / 1e6;
}

static void answer_stats(int fd, int reset) {
    uint64_t *sorted = malloc((holds_len ? holds_len : 1) * sizeof *sorted);
    if (!sorted) { close_conn(fd); return; }
    memcpy(sorted, holds, holds_len * sizeof *sorted);
    qsort(sorted, holds_len, sizeof *sorted, cmp_u64);
    char body[512], head[160];
    int blen = snprintf(body, sizeof body,
        "{\"served\": %llu, \"delay_ms\": %g, \"coarse\": false, \"server\": \"c\", "
        "\"count\": %zu, \"hold_ms\": {\"p50\": %.6f, \"p99\": %.6f, \"max\": %.6f}}",
        (unsigned long long)served, delay_ms, holds_len,
        percentile_ms(sorted, holds_len, 50), percentile_ms(sorted, holds_len, 99),
        holds_len ? (double)sorted[holds_len - 1] / 1e6 : 0.0);
    free(sorted);
    if (reset) holds_len = 0;
    int hlen = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        "Content-Length: %d\r\n\r\n", blen);
    write_all(fd, head, (size_t)hlen);
    write_all(fd, body, (size_t)blen);
}

static void answer_status(int fd) {
    char body[256], head[128];
    int blen = snprintf(body, sizeof body,
        "Active connections: 1 \nserver accepts handled requests\n %llu %llu %llu \n"
        "Reading: 0 Writing: 1 Waiting: 0 \n",
        (unsigned long long)accepted, (unsigned long long)accepted, (unsigned long long)served);
    int hlen = snprintf(head, sizeof head,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n", blen);
    write_all(fd, head, (size_t)hlen);
    write_all(fd, body, (size_t)blen);
}

/* The value of header `name` (case-insensitive) in the block [start, end), or NULL. */
static const char *header_value(const char *start, const char *end, const char *name) {
    size_t nlen = strlen(name);
    for (const char *line = start; line < end;) {
        const char *eol = memmem(line, (size_t)(end - line), "\r\n", 2);
        if (!eol) eol = end;
        if ((size_t)(eol - line) > nlen && line[nlen] == ':' && strncasecmp(line, name, nlen) == 0) {
            const char *v = line + nlen + 1;
            while (v < eol && (*v == ' ' || *v == '\t')) v++;
            return v;
        }
        line = eol + 2;
    }
    return NULL;
}

/* Handle every complete request in the connection's buffer; 0 when it was closed. */
static int handle_requests(int fd, uint64_t arrived) {
    struct conn *c = conns[fd];
    while (c->open) {
        char *end = memmem(c->in, c->len, "\r\n\r\n", 4);
        if (!end) {
            if (c->len == IN_CAP) { close_conn(fd); return 0; }
            return 1;
        }
        size_t head_len = (size_t)(end - c->in) + 4;
        const char *cl = header_value(c->in, end, "content-length");
        size_t body = cl ? strtoul(cl, NULL, 10) : 0;
        if (body > IN_CAP - head_len) { close_conn(fd); return 0; }
        if (c->len < head_len + body) return 1;
        const char *conn_hdr = header_value(c->in, end, "connection");
        int close_after = conn_hdr && strncasecmp(conn_hdr, "close", 5) == 0;
        const char *sp = memchr(c->in, ' ', head_len);
        if (!sp) { close_conn(fd); return 0; }
        const char *path = sp + 1;
        if (strncmp(path, "/stats", 6) == 0) {
            const char *eol = memmem(path, head_len, "\r\n", 2);
            answer_stats(fd, eol && memmem(path, (size_t)(eol - path), "reset=1", 7) != NULL);
            if (close_after) close_conn(fd);
        } else if (strncmp(path, "/nginx-status", 13) == 0) {
            answer_status(fd);
            if (close_after) close_conn(fd);
        } else {
            if (q_len == QUEUE_CAP) { close_conn(fd); return 0; }
            struct pending *p = &queue[(q_head + q_len) % QUEUE_CAP];
            p->fd = fd;
            p->generation = c->generation;
            p->close_after = close_after;
            p->arrived_ns = arrived;
            if (q_len++ == 0) arm_timer();
        }
        if (!c->open) return 0;
        memmove(c->in, c->in + head_len + body, c->len - head_len - body);
        c->len -= head_len + body;
    }
    return 0;
}

static void on_readable(int fd) {
    struct conn *c = conns[fd];
    for (;;) {
        ssize_t n = read(fd, c->in + c->len, IN_CAP - c->len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n <= 0) { close_conn(fd); return; }
        c->len += (size_t)n;
        if (!handle_requests(fd, now_ns())) return;
        if (c->len < IN_CAP) continue;
        return;
    }
}

static void on_timer(void) {
    uint64_t expirations;
    if (read(timerfd_, &expirations, sizeof expirations) < 0 && errno != EAGAIN) return;
    while (q_len > 0) {
        struct pending *p = &queue[q_head];
        if (p->arrived_ns + delay_ns > now_ns()) break;
        struct conn *c = conns[p->fd];
        if (c && c->open && c->generation == p->generation) {
            write_all(p->fd, OK_RESPONSE, sizeof OK_RESPONSE - 1);
            served++;
            if (holds_len == holds_cap) {
                size_t cap = holds_cap ? holds_cap * 2 : 65536;
                uint64_t *grown = realloc(holds, cap * sizeof *grown);
                if (grown) { holds = grown; holds_cap = cap; }
            }
            if (holds_len < holds_cap) holds[holds_len++] = now_ns() - p->arrived_ns;
            if (p->close_after) close_conn(p->fd);
        }
        q_head = (q_head + 1) % QUEUE_CAP;
        q_len--;
    }
    arm_timer();
}

static void on_accept(int listener) {
    for (;;) {
        int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        if (fd >= MAX_FD) { close(fd); continue; }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (!conns[fd] && !(conns[fd] = calloc(1, sizeof **conns))) { close(fd); continue; }
        conns[fd]->open = 1;
        conns[fd]->len = 0;
        accepted++;
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
    }
}

static void on_signal(int sig) { (void)sig; _exit(0); }

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s PORT [DELAY_MS]\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    delay_ms = argc > 2 ? atof(argv[2]) : 10.0;
    if (port <= 0 || port > 65535 || !(delay_ms >= 0.0)) {
        fprintf(stderr, "fixed_delay_server: bad port or delay\n");
        return 2;
    }
    delay_ns = (uint64_t)(delay_ms * 1e6 + 0.5);
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    queue = calloc(QUEUE_CAP, sizeof *queue);
    if (!queue) return 1;

    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(listener, 4096) < 0) {
        perror("fixed_delay_server: listen");
        return 1;
    }
    epfd = epoll_create1(EPOLL_CLOEXEC);
    timerfd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = listener};
    epoll_ctl(epfd, EPOLL_CTL_ADD, listener, &ev);
    ev.data.fd = timerfd_;
    epoll_ctl(epfd, EPOLL_CTL_ADD, timerfd_, &ev);
    printf("listening on 127.0.0.1:%d, delay %g ms\n", port, delay_ms);
    fflush(stdout);

    struct epoll_event events[256];
    for (;;) {
        int n = epoll_wait(epfd, events, 256, -1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) { perror("fixed_delay_server: epoll_wait"); return 1; }
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == listener) on_accept(listener);
            else if (fd == timerfd_) on_timer();
            else if (conns[fd] && conns[fd]->open) on_readable(fd);
        }
    }
}
