/* SPDX-License-Identifier: Apache-2.0 */
/* airlock-tunnel-bench: the tunnel measurements the kit (shared/baselines/tunnel)
 * does not make. One program, four modes; results are "key=value" lines on
 * stdout, progress and errors on stderr.
 *
 *   mem PID...
 *       VmRSS, RssAnon, RssFile (kB) and Pss (kB, smaps_rollup) and the number of
 *       open descriptors of each process.
 *   hold [--max-seconds S]
 *       an upstream that accepts connections and holds them: it reads and
 *       discards what arrives and never answers. Prints "port=N" once it
 *       listens on 127.0.0.1. For the idle-stream count, where the gateway may
 *       dial one upstream connection per stream.
 *   streams --connect ADDR:PORT --sni NAME --ca FILE --count N --pids "RELAY GATEWAY"
 *           [--parallel P] [--settle-ms MS] [--max-seconds S] [--metrics ADMIN_ADDR:PORT]
 *       opens N TLS connections to ADDR:PORT with SNI NAME (verified against
 *       FILE), completes each handshake and then sends nothing; reads the
 *       memory of the named processes before, with all N open (after
 *       --settle-ms), and again after closing them all. Reports
 *       (after - before) / N per process, and the gateway's tunnel_streams_active
 *       (from its /metrics at --metrics) while all are open.
 *   reconnect --admin ADDR:PORT --count N --log FILE [--signal KILL|TERM]
 *             [--all C] [--max-seconds S] -- RELAY COMMAND...
 *       N times: waits until the gateway's /readyz (at --admin) is no longer
 *       200, starts RELAY COMMAND with a pipe on fd 3 (the command must carry
 *       --ready-fd 3), reads the relay's ready line, then polls /readyz every
 *       millisecond until it answers 200; the time from the ready line to that
 *       200 is one sample. With --all C, also the time until the gateway's
 *       /metrics says tunnel_connections{state="ready"} C. Then the relay is stopped with --signal (KILL by
 *       default) and waited for. The relay is killed when this program dies.
 *
 * Every loop is bounded by --max-seconds (alarm), and every child dies with
 * this process (PR_SET_PDEATHSIG). */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("airlock-tunnel-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static void parse_addr(const char *s, struct sockaddr_in *sa)
{
    const char *colon = strrchr(s, ':');
    char host[64];

    if (!colon || (size_t)(colon - s) >= sizeof host)
        die("bad address %s (want IPV4:PORT)", s);
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
        die("bad address %s (want IPV4:PORT)", s);
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* ---- HTTP/1.1 to an admin listener ---------------------------------------- */

/* GET PATH on a fresh connection: the status code, or -1 if none came. The
 * body (up to cap - 1 bytes, NUL-terminated) goes to body when it is given. */
static int http_get(const struct sockaddr_in *sa, const char *path, char *body, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), code = -1;
    struct timeval tv = { 1, 0 };
    char req[256], buf[16384];
    ssize_t n, got = 0;

    if (body && cap)
        body[0] = '\0';
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) < 0)
        goto out;
    n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n", path);
    if (write(fd, req, (size_t)n) != n)
        goto out;
    while (got < (ssize_t)sizeof buf - 1 && (n = read(fd, buf + got, sizeof buf - 1 - (size_t)got)) > 0) {
        got += n;
        if (!body && memchr(buf, '\n', (size_t)got))
            break; /* the status line is enough */
    }
    buf[got] = '\0';
    if (got > 12 && !strncmp(buf, "HTTP/1.", 7))
        code = atoi(buf + 9);
    if (body && cap) {
        const char *b = strstr(buf, "\r\n\r\n");
        snprintf(body, cap, "%s", b ? b + 4 : "");
    }
out:
    close(fd);
    return code;
}

static int http_status(const struct sockaddr_in *sa, const char *path)
{
    return http_get(sa, path, NULL, 0);
}

/* the value of a metric line "NAME VALUE" in a Prometheus text body, or -1 */
static double metric(const char *body, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (!strncmp(p, name, nl) && p[nl] == ' ')
            return strtod(p + nl + 1, NULL);
    }
    return -1;
}

/* ---- process memory ---------------------------------------------------- */

struct mem {
    long rss_kb, anon_kb, file_kb, pss_kb, fds;
};

static long status_field(const char *path, const char *key)
{
    FILE *f = fopen(path, "r");
    char line[256];
    size_t kl = strlen(key);
    long v = -1;

    if (!f)
        return -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
            v = strtol(line + kl + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

static struct mem mem_read(int pid)
{
    struct mem m;
    char path[64];
    DIR *d;

    snprintf(path, sizeof path, "/proc/%d/status", pid);
    m.rss_kb = status_field(path, "VmRSS");
    m.anon_kb = status_field(path, "RssAnon");
    m.file_kb = status_field(path, "RssFile");
    snprintf(path, sizeof path, "/proc/%d/smaps_rollup", pid);
    m.pss_kb = status_field(path, "Pss");
    m.fds = 0;
    snprintf(path, sizeof path, "/proc/%d/fd", pid);
    if ((d = opendir(path))) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.')
                m.fds++;
        closedir(d);
    }
    return m;
}

static int mode_mem(int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        int pid = atoi(argv[i]);
        struct mem m = mem_read(pid);
        if (m.rss_kb < 0)
            die("no process %d", pid);
        printf("pid=%d rss_kb=%ld anon_kb=%ld file_kb=%ld pss_kb=%ld fds=%ld\n", pid, m.rss_kb, m.anon_kb,
               m.file_kb, m.pss_kb, m.fds);
    }
    return 0;
}

/* ---- hold: an upstream that accepts and never answers -------------------- */

static int mode_hold(int argc, char **argv)
{
    int max_s = 3600, lfd, ep, one = 1;
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t sl = sizeof sa;
    long held = 0;

    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--max-seconds") && i + 1 < argc)
            max_s = atoi(argv[++i]);
        else
            die("hold: unknown option %s", argv[i]);
    }
    alarm((unsigned)max_s);
    raise_nofile();
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 4096) < 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &sl) < 0)
        die("hold: listen: %s", strerror(errno));
    printf("port=%d\n", ntohs(sa.sin_port));
    fflush(stdout);
    ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = lfd };
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    for (;;) {
        struct epoll_event evs[64];
        int n = epoll_wait(ep, evs, 64, -1);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                int c;
                while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    struct epoll_event ce = { .events = EPOLLIN | EPOLLRDHUP, .data.fd = c };
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
                    if (++held % 1000 == 0)
                        fprintf(stderr, "hold: %ld connections accepted\n", held);
                }
            } else {
                char buf[4096];
                ssize_t r;
                while ((r = read(fd, buf, sizeof buf)) > 0) {
                }
                if (r == 0 || (r < 0 && errno != EAGAIN)) {
                    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
                    close(fd);
                }
            }
        }
    }
}

/* ---- streams: N idle inner-TLS connections -------------------------------- */

enum { C_IDLE, C_CONNECTING, C_HANDSHAKE, C_UP, C_FAILED };

struct conn {
    int fd;
    int state;
    SSL *ssl;
};

static void print_mem_delta(const char *name, const char *when, struct mem a, struct mem b, long n)
{
    printf("%s_%s_rss_kb=%ld\n%s_%s_anon_kb=%ld\n%s_%s_pss_kb=%ld\n%s_%s_fds=%ld\n", name, when, b.rss_kb, name,
           when, b.anon_kb, name, when, b.pss_kb, name, when, b.fds);
    if (n > 0)
        printf("%s_%s_rss_per_stream_b=%.0f\n%s_%s_anon_per_stream_b=%.0f\n%s_%s_pss_per_stream_b=%.0f\n"
               "%s_%s_fds_per_stream=%.2f\n",
               name, when, (double)(b.rss_kb - a.rss_kb) * 1024.0 / (double)n, name, when,
               (double)(b.anon_kb - a.anon_kb) * 1024.0 / (double)n, name, when,
               (double)(b.pss_kb - a.pss_kb) * 1024.0 / (double)n, name, when, (double)(b.fds - a.fds) / (double)n);
}

static int mode_streams(int argc, char **argv)
{
    const char *connect_to = NULL, *sni = NULL, *ca = NULL, *pids_s = NULL, *metrics = NULL;
    long count = 1000, parallel = 32, settle_ms = 2000, max_s = 300;
    struct sockaddr_in sa;
    int pids[8], npids = 0;
    const char *names[8];

    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            die("streams: %s needs a value", a);
        if (!strcmp(a, "--connect"))
            connect_to = v;
        else if (!strcmp(a, "--sni"))
            sni = v;
        else if (!strcmp(a, "--ca"))
            ca = v;
        else if (!strcmp(a, "--count"))
            count = atol(v);
        else if (!strcmp(a, "--parallel"))
            parallel = atol(v);
        else if (!strcmp(a, "--settle-ms"))
            settle_ms = atol(v);
        else if (!strcmp(a, "--max-seconds"))
            max_s = atol(v);
        else if (!strcmp(a, "--pids"))
            pids_s = v;
        else if (!strcmp(a, "--metrics"))
            metrics = v;
        else
            die("streams: unknown option %s", a);
        i++;
    }
    if (!connect_to || !sni || !ca || !pids_s || count <= 0 || parallel <= 0)
        die("streams: --connect, --sni, --ca, --pids and --count are required");
    parse_addr(connect_to, &sa);
    {
        /* "relay=PID gateway=PID" or bare PIDs (named p0, p1, ...) */
        char *copy = strdup(pids_s), *save = NULL;
        for (char *t = strtok_r(copy, " ,", &save); t && npids < 8; t = strtok_r(NULL, " ,", &save)) {
            char *eq = strchr(t, '=');
            if (eq) {
                *eq = '\0';
                names[npids] = t;
                pids[npids++] = atoi(eq + 1);
            } else {
                char *nm = malloc(16);
                snprintf(nm, 16, "p%d", npids);
                names[npids] = nm;
                pids[npids++] = atoi(t);
            }
        }
    }
    alarm((unsigned)max_s);
    raise_nofile();

    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1)
        die("streams: cannot load CA %s", ca);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);

    struct mem before[8], open_m[8], closed[8];
    for (int i = 0; i < npids; i++) {
        before[i] = mem_read(pids[i]);
        if (before[i].rss_kb < 0)
            die("streams: no process %d", pids[i]);
    }

    struct conn *c = calloc((size_t)count, sizeof *c);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    long next = 0, inflight = 0, up = 0, failed = 0;
    char first_err[256] = "";
    double t0 = now_s(), deadline = t0 + (double)max_s - 10;

    while (up + failed < count) {
        while (inflight < parallel && next < count) {
            struct conn *k = &c[next];
            int one = 1;
            k->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (k->fd < 0)
                die("streams: socket: %s (at %ld; raise ulimit -n)", strerror(errno), next);
            setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            if (connect(k->fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS)
                die("streams: connect: %s", strerror(errno));
            k->ssl = SSL_new(ctx);
            SSL_set_tlsext_host_name(k->ssl, sni);
            SSL_set1_host(k->ssl, sni);
            SSL_set_fd(k->ssl, k->fd);
            SSL_set_connect_state(k->ssl);
            k->state = C_CONNECTING;
            struct epoll_event ev = { .events = EPOLLOUT, .data.u64 = (uint64_t)next };
            epoll_ctl(ep, EPOLL_CTL_ADD, k->fd, &ev);
            next++;
            inflight++;
        }
        struct epoll_event evs[256];
        int n = epoll_wait(ep, evs, 256, 1000);
        if (now_s() > deadline)
            die("streams: only %ld of %ld up after %.0f s (%ld failed%s%s)", up, count, now_s() - t0, failed,
                first_err[0] ? ": " : "", first_err);
        for (int i = 0; i < n; i++) {
            struct conn *k = &c[evs[i].data.u64];
            int r;
            ERR_clear_error();
            r = SSL_do_handshake(k->ssl);
            if (r == 1) {
                k->state = C_UP;
                epoll_ctl(ep, EPOLL_CTL_DEL, k->fd, NULL);
                inflight--;
                up++;
                continue;
            }
            int e = SSL_get_error(k->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                struct epoll_event ev = { .events = e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT,
                                          .data.u64 = evs[i].data.u64 };
                epoll_ctl(ep, EPOLL_CTL_MOD, k->fd, &ev);
                k->state = C_HANDSHAKE;
                continue;
            }
            if (!first_err[0]) {
                unsigned long ec = ERR_peek_error();
                if (ec)
                    ERR_error_string_n(ec, first_err, sizeof first_err);
                else
                    snprintf(first_err, sizeof first_err, "SSL error %d, errno %s (connection %ld)", e,
                             strerror(errno), (long)evs[i].data.u64);
            }
            epoll_ctl(ep, EPOLL_CTL_DEL, k->fd, NULL);
            SSL_free(k->ssl);
            k->ssl = NULL;
            close(k->fd);
            k->state = C_FAILED;
            inflight--;
            failed++;
        }
    }
    double t_open = now_s() - t0;
    fprintf(stderr, "streams: %ld up, %ld failed in %.2f s; settling %ld ms\n", up, failed, t_open, settle_ms);
    sleep_ms(settle_ms);
    for (int i = 0; i < npids; i++)
        open_m[i] = mem_read(pids[i]);
    /* Are they all still open? A peer that gave up closes: count readable EOFs. */
    long alive = 0;
    for (long i = 0; i < count; i++) {
        if (c[i].state != C_UP)
            continue;
        char b;
        ssize_t r = recv(c[i].fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
        if (r > 0 || (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)))
            alive++;
    }

    printf("streams=%ld\nstreams_up=%ld\nstreams_failed=%ld\nstreams_alive_after_settle=%ld\nopen_seconds=%.2f\n"
           "handshakes_per_s=%.0f\n",
           count, up, failed, alive, t_open, (double)up / t_open);
    if (first_err[0])
        printf("first_error=%s\n", first_err);
    if (metrics) {
        /* the gateway's own count: did every stream reach it? */
        static char body[65536];
        struct sockaddr_in ma;
        parse_addr(metrics, &ma);
        http_get(&ma, "/metrics", body, sizeof body);
        printf("gateway_streams_active=%.0f\n", metric(body, "tunnel_streams_active"));
    }
    for (int i = 0; i < npids; i++) {
        printf("%s_before_rss_kb=%ld\n%s_before_anon_kb=%ld\n%s_before_fds=%ld\n", names[i], before[i].rss_kb,
               names[i], before[i].anon_kb, names[i], before[i].fds);
        print_mem_delta(names[i], "open", before[i], open_m[i], up);
    }
    fflush(stdout);

    for (long i = 0; i < count; i++) {
        if (c[i].state == C_UP) {
            SSL_free(c[i].ssl);
            close(c[i].fd);
        }
    }
    sleep_ms(settle_ms);
    for (int i = 0; i < npids; i++) {
        closed[i] = mem_read(pids[i]);
        printf("%s_closed_rss_kb=%ld\n%s_closed_anon_kb=%ld\n%s_closed_fds=%ld\n", names[i], closed[i].rss_kb,
               names[i], closed[i].anon_kb, names[i], closed[i].fds);
    }
    free(c);
    SSL_CTX_free(ctx);
    return failed ? 3 : 0;
}

/* ---- reconnect after a relay restart ------------------------------------ */

static volatile pid_t relay_pid;

static void on_signal(int sig)
{
    if (relay_pid > 0)
        kill(relay_pid, SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *sorted, int n, double p)
{
    /* nearest rank */
    int k = (int)(p / 100.0 * n + 0.999999);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return sorted[k - 1];
}

static int mode_reconnect(int argc, char **argv)
{
    const char *admin = NULL, *log = NULL;
    int count = 20, sig = SIGKILL, max_s = 600, cmd = -1, all = 0;
    struct sockaddr_in sa;
    static char mbody[65536];

    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            cmd = i + 1;
            break;
        }
        if (i + 1 >= argc)
            die("reconnect: %s needs a value", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--admin"))
            admin = v;
        else if (!strcmp(a, "--count"))
            count = atoi(v);
        else if (!strcmp(a, "--log"))
            log = v;
        else if (!strcmp(a, "--all"))
            all = atoi(v);
        else if (!strcmp(a, "--max-seconds"))
            max_s = atoi(v);
        else if (!strcmp(a, "--signal"))
            sig = !strcmp(v, "TERM") ? SIGTERM : !strcmp(v, "KILL") ? SIGKILL : (die("reconnect: --signal KILL|TERM"), 0);
        else
            die("reconnect: unknown option %s", a);
    }
    if (!admin || !log || cmd < 0 || cmd >= argc || count < 1 || count > 1000)
        die("reconnect: --admin ADDR:PORT --count N --log FILE -- RELAY COMMAND");
    parse_addr(admin, &sa);
    alarm((unsigned)max_s);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGALRM, on_signal);

    double *up = calloc((size_t)count, sizeof *up), *start = calloc((size_t)count, sizeof *start),
           *down = calloc((size_t)count, sizeof *down), *allup = calloc((size_t)count, sizeof *allup);
    int start_failures = 0;

    for (int it = 0; it < count; it++) {
        /* the gateway must have seen the previous relay go away */
        double t = now_s();
        while (http_status(&sa, "/readyz") == 200) {
            if (now_s() - t > 60)
                die("reconnect: the gateway's /readyz still says 200 60 s after the relay stopped");
            sleep_ms(1);
        }
        down[it] = now_s() - t;

        int p[2];
        double t_exec, t_ready = 0;
        for (int attempt = 0;; attempt++) {
            if (attempt >= 50)
                die("reconnect: the relay did not start in 50 attempts; see %s", log);
            if (pipe2(p, O_CLOEXEC) < 0)
                die("pipe: %s", strerror(errno));
            t_exec = now_s();
            pid_t pid = fork();
            if (pid < 0)
                die("fork: %s", strerror(errno));
            if (pid == 0) {
                int lf = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                dup2(p[1], 3);
                if (lf >= 0) {
                    dup2(lf, 1);
                    dup2(lf, 2);
                }
                int nul = open("/dev/null", O_RDONLY);
                if (nul >= 0)
                    dup2(nul, 0);
                execvp(argv[cmd], argv + cmd);
                _exit(127);
            }
            relay_pid = pid;
            close(p[1]);
            char line[256];
            ssize_t got = 0, r;
            struct pollfd pf = { .fd = p[0], .events = POLLIN };
            while (got < (ssize_t)sizeof line - 1) {
                int pr = poll(&pf, 1, 30000);
                if (pr <= 0)
                    break;
                r = read(p[0], line + got, sizeof line - 1 - (size_t)got);
                if (r <= 0)
                    break;
                got += r;
                if (memchr(line, '\n', (size_t)got))
                    break;
            }
            close(p[0]);
            if (got > 0 && memchr(line, '\n', (size_t)got)) {
                t_ready = now_s();
                break;
            }
            /* no ready line: the relay exited (port still taken?) or hung */
            start_failures++;
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            relay_pid = 0;
            sleep_ms(100);
        }
        start[it] = t_ready - t_exec;
        while (http_status(&sa, "/readyz") != 200) {
            if (now_s() - t_ready > 60)
                die("reconnect: no ready relay connection 60 s after the relay's ready line (round %d)", it + 1);
            sleep_ms(1);
        }
        up[it] = now_s() - t_ready;
        /* all of the gateway's connections: tunnel_connections{state="ready"} == --all */
        allup[it] = up[it];
        while (all > 0) {
            http_get(&sa, "/metrics", mbody, sizeof mbody);
            if (metric(mbody, "tunnel_connections{state=\"ready\"}") >= all)
                break;
            if (now_s() - t_ready > 60)
                die("reconnect: not %d ready connections 60 s after the relay's ready line (round %d)", all, it + 1);
            sleep_ms(2);
        }
        if (all > 0)
            allup[it] = now_s() - t_ready;
        fprintf(stderr, "reconnect %d/%d: relay ready after %.1f ms, gateway ready %.1f ms later, all %d at %.1f ms\n",
                it + 1, count, start[it] * 1e3, up[it] * 1e3, all, allup[it] * 1e3);
        kill(relay_pid, sig);
        waitpid(relay_pid, NULL, 0);
        relay_pid = 0;
    }

    printf("reconnect_rounds=%d\nreconnect_ms=", count);
    for (int i = 0; i < count; i++)
        printf("%s%.1f", i ? "/" : "", up[i] * 1e3);
    printf("\n");
    qsort(up, (size_t)count, sizeof *up, cmp_double);
    qsort(start, (size_t)count, sizeof *start, cmp_double);
    qsort(down, (size_t)count, sizeof *down, cmp_double);
    qsort(allup, (size_t)count, sizeof *allup, cmp_double);
    if (all > 0)
        printf("reconnect_all_connections=%d\nreconnect_all_p50_ms=%.1f\nreconnect_all_p99_ms=%.1f\n", all,
               pct(allup, count, 50) * 1e3, pct(allup, count, 99) * 1e3);
    printf("reconnect_p50_ms=%.1f\nreconnect_p99_ms=%.1f\nreconnect_max_ms=%.1f\nreconnect_min_ms=%.1f\n",
           pct(up, count, 50) * 1e3, pct(up, count, 99) * 1e3, up[count - 1] * 1e3, up[0] * 1e3);
    printf("relay_start_p50_ms=%.1f\nrelay_start_max_ms=%.1f\n", pct(start, count, 50) * 1e3,
           start[count - 1] * 1e3);
    printf("gateway_notices_loss_p50_ms=%.1f\ngateway_notices_loss_max_ms=%.1f\nrelay_start_failures=%d\n",
           pct(down, count, 50) * 1e3, down[count - 1] * 1e3, start_failures);
    free(up);
    free(start);
    free(down);
    free(allup);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: airlock-tunnel-bench mem PID... | hold | streams ... | reconnect ... -- CMD...\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (!strcmp(argv[1], "mem"))
        return mode_mem(argc - 2, argv + 2);
    if (!strcmp(argv[1], "hold"))
        return mode_hold(argc - 2, argv + 2);
    if (!strcmp(argv[1], "streams"))
        return mode_streams(argc - 2, argv + 2);
    if (!strcmp(argv[1], "reconnect"))
        return mode_reconnect(argc - 2, argv + 2);
    die("unknown mode %s", argv[1]);
}
