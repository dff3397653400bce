/* SPDX-License-Identifier: Apache-2.0 */
/* airlock-bench main: options, the fixtures every phase needs (one
 * environment per phase, so that no phase sees another's queue), the phases
 * in order, and the results table. bench/run.sh starts the hub and runs this;
 * see docs/BENCHMARKS.md for what each number means. */
#include <event2/event.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "bench.h"

struct opts {
    const char *url, *key_file;
    pid_t hub_pid;
    int wake_iters, wake_many, cycle_workers, sse_iters;
    double cycle_seconds;
    struct bench_rss_opts rss;
    unsigned phases;           /* PHASE_* bits */
};

#define PHASE_MAX_S 120   /* a latency run that takes longer than this stops early */

enum { PHASE_WAKE = 1, PHASE_SSE = 2, PHASE_CYCLES = 4, PHASE_RSS = 8, PHASE_ALL = 15 };

struct results {
    struct bench_samples wake1, wake_many, echo, reply;
    struct bench_cycles_result cyc;
    struct bench_rss_result rss;
};

static void usage(void)
{
    fputs("usage: airlock-bench --url URL --api-key-file FILE --hub-pid PID [options]\n"
          "Load generator for the hub; bench/run.sh starts a hub and runs it (docs/BENCHMARKS.md).\n"
          "  --wake-iters N      wake-latency samples per poller count (2000)\n"
          "  --wake-many N       parked pollers in the second wake run (100)\n"
          "  --cycle-workers N   concurrent pollers in the cycle run (8)\n"
          "  --cycle-seconds S   length of the timed cycle run (10)\n"
          "  --sse-iters N       SSE delivery samples (1000)\n"
          "  --rss-polls N       parked long-polls held (5000)\n"
          "  --rss-streams N     SSE streams held (5000)\n"
          "  --rss-sessions N    sessions the streams are spread over (500)\n"
          "  --rss-hold S        seconds to hold them while sampling memory; spans one\n"
          "                      15 s SSE ping, which grows every stream's buffers (17)\n"
          "  --loaded-iters N    wake and SSE samples taken while holding them (300)\n"
          "  --phases LIST       run only these of wake,sse,cycles,rss (all)\n"
          "  --quick             small counts: a smoke run of every phase in seconds\n",
          stderr);
}

static int parse_int(const char *s, int min, int *ret)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end || v < min || v > 1000000)
        return -EINVAL;
    *ret = (int) v;
    return 0;
}

static int parse_phases(const char *s, unsigned *ret)
{
    static const char *const names[] = { "wake", "sse", "cycles", "rss" };
    *ret = 0;
    while (*s) {
        size_t n = strcspn(s, ",");
        size_t i = 0;
        while (i < AL_ELEMENTSOF(names) && (strlen(names[i]) != n || strncmp(s, names[i], n)))
            i++;
        if (i == AL_ELEMENTSOF(names))
            return -EINVAL;
        *ret |= 1u << i;
        s += n + (s[n] == ',');
    }
    return *ret ? 0 : -EINVAL;
}

/* Returns 0 to run, 1 after --help, or -EINVAL (usage printed). */
static int parse_opts(int argc, char **argv, struct opts *o)
{
    enum { O_URL = 256, O_KEY, O_PID, O_WI, O_WM, O_CW, O_CS, O_SI, O_RP, O_RS, O_RSS, O_RH, O_LI, O_PHASES, O_QUICK, O_HELP };
    static const struct option lo[] = {
        { "url", 1, 0, O_URL }, { "api-key-file", 1, 0, O_KEY }, { "hub-pid", 1, 0, O_PID },
        { "wake-iters", 1, 0, O_WI }, { "wake-many", 1, 0, O_WM }, { "cycle-workers", 1, 0, O_CW },
        { "cycle-seconds", 1, 0, O_CS }, { "sse-iters", 1, 0, O_SI }, { "rss-polls", 1, 0, O_RP },
        { "rss-streams", 1, 0, O_RS }, { "rss-sessions", 1, 0, O_RSS }, { "rss-hold", 1, 0, O_RH },
        { "loaded-iters", 1, 0, O_LI }, { "phases", 1, 0, O_PHASES }, { "quick", 0, 0, O_QUICK },
        { "help", 0, 0, O_HELP }, { 0 },
    };
    int c, pid = 0, secs, hold, r = 0;

    while (r == 0 && (c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case O_URL: o->url = optarg; break;
        case O_KEY: o->key_file = optarg; break;
        case O_PID: r = parse_int(optarg, 1, &pid); o->hub_pid = pid; break;
        case O_WI: r = parse_int(optarg, 1, &o->wake_iters); break;
        case O_WM: r = parse_int(optarg, 1, &o->wake_many); break;
        case O_CW: r = parse_int(optarg, 1, &o->cycle_workers); break;
        case O_CS: r = parse_int(optarg, 1, &secs); o->cycle_seconds = secs; break;
        case O_SI: r = parse_int(optarg, 1, &o->sse_iters); break;
        case O_RP: r = parse_int(optarg, 1, &o->rss.polls); break;
        case O_RS: r = parse_int(optarg, 1, &o->rss.streams); break;
        case O_RSS: r = parse_int(optarg, 1, &o->rss.sessions); break;
        case O_RH: r = parse_int(optarg, 1, &hold); o->rss.hold_s = hold; break;
        case O_LI: r = parse_int(optarg, 0, &o->rss.loaded_iters); break;
        case O_PHASES: r = parse_phases(optarg, &o->phases); break;
        case O_QUICK:
            o->wake_iters = 200, o->sse_iters = 100, o->cycle_seconds = 2;
            o->rss = (struct bench_rss_opts){ .polls = 500, .streams = 500, .sessions = 50, .hold_s = 1,
                                              .loaded_iters = 50, .loaded_max_s = 10 };
            break;
        case O_HELP: usage(); return 1;
        default: r = -EINVAL;
        }
    }
    if (r < 0 || optind != argc || !o->url || !o->key_file || !o->hub_pid) {
        usage();
        return -EINVAL;
    }
    return 0;
}

static int read_key(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    char *line = fgets(buf, (int) n, f);
    fclose(f);
    if (!line)
        return -EINVAL;
    buf[strcspn(buf, "\r\n")] = '\0';
    return 0;
}

static int setup(struct bench *b, const struct opts *o)
{
    char key[128];
    struct rlimit rl;
    unsigned port;
    int r = read_key(o->key_file, key, sizeof(key));

    if (r < 0) {
        fprintf(stderr, "bench: %s: cannot read the API key\n", o->key_file);
        return r;
    }
    snprintf(b->api_auth, sizeof(b->api_auth), "Bearer %s", key);
    explicit_bzero(key, sizeof(key));
    if (sscanf(o->url, "http://%63[^:/]:%u", b->host, &port) != 2 || port == 0 || port > 65535) {
        fprintf(stderr, "bench: --url: expected http://HOST:PORT\n");
        return -EINVAL;
    }
    b->port = (uint16_t) port;
    b->hub_pid = o->hub_pid;
    /* Every held connection is a descriptor here as well as in the hub. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void) setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && (o->phases & PHASE_RSS) &&
        rl.rlim_cur < (rlim_t) (o->rss.polls + o->rss.streams + 64)) {
        fprintf(stderr, "bench: RLIMIT_NOFILE is %llu; holding %d connections needs more\n",
                (unsigned long long) rl.rlim_cur, o->rss.polls + o->rss.streams);
        return -EMFILE;
    }
    struct sigaction sa = { .sa_handler = SIG_IGN };
    sigaction(SIGPIPE, &sa, NULL);
    b->base = event_base_new();
    if (!b->base)
        return -ENOMEM;
    bench_ctl_reset(b);
    return 0;
}

/* One table: name | p50 or value | p99 or note | samples | target | result. */
#define ROW "%-46s %12s %12s %6s  %-12s %s\n"

static void row_lat(const char *name, struct bench_samples *s, const char *target, double limit_us)
{
    char p50[32], p99[32], n[16];
    double v50 = bench_samples_pct(s, 50), v99 = bench_samples_pct(s, 99);
    snprintf(p50, sizeof(p50), "%.3f ms", v50 / 1000.0);
    snprintf(p99, sizeof(p99), "%.3f ms", v99 / 1000.0);
    snprintf(n, sizeof(n), "%zu", s->n);
    printf(ROW, name, s->n ? p50 : "-", s->n ? p99 : "-", n, target,
           limit_us <= 0 ? "" : s->n && v50 <= limit_us ? "met" : "NOT MET");
}

static void row_val(const char *name, const char *value, const char *note, const char *target, const char *result)
{
    printf(ROW, name, value, note, "", target, result);
}

static double mb(int64_t kb) { return (double) kb * 1024.0 / 1e6; }

static void report_rss(const struct opts *o, struct results *res)
{
    const struct bench_rss_result *m = &res->rss;
    char name[96], v[32], note[32];

    snprintf(name, sizeof(name), "hub VmRSS, %d polls + %d streams held", o->rss.polls, o->rss.streams);
    snprintf(v, sizeof(v), "%.1f MB", mb(m->held.rss_kb));
    row_val(name, v, "", "<= 100 MB", mb(m->held.rss_kb) <= 100 ? "met" : "NOT MET");
    snprintf(v, sizeof(v), "%.1f MB", mb(m->held.pss_kb));
    row_val("  hub PSS, same moment", v, "", "", "");
    snprintf(v, sizeof(v), "%.1f MB", mb(AL_MAX(m->held.hwm_kb, m->after.hwm_kb)));
    row_val("  hub VmHWM (peak RSS of the whole run)", v, "", "", "");
    snprintf(v, sizeof(v), "%.1f MB", mb(m->before.rss_kb));
    row_val("  hub VmRSS before opening them", v, "", "", "");
    snprintf(v, sizeof(v), "%.2f KB", mb(m->held.rss_kb - m->before.rss_kb) * 1000.0 / (o->rss.polls + o->rss.streams));
    row_val("  growth per held connection", v, "", "", "");
    snprintf(v, sizeof(v), "%.1f MB", mb(m->after.rss_kb));
    snprintf(note, sizeof(note), "CPU %.0f%%", m->after_cpu_pct);
    row_val("  hub VmRSS 1 s after closing them", v, note, "", "");
    snprintf(v, sizeof(v), "%.0f%%", m->hub_cpu_pct);
    snprintf(note, sizeof(note), "%.0f%% waiting", m->hub_wait_pct);
    row_val("  hub on a CPU / waiting for one, holding", v, note, "", "");
    snprintf(name, sizeof(name), "  empty polls answered/s (%d if all parked)", o->rss.polls);
    snprintf(v, sizeof(v), "%.0f/s", m->polls_per_s);
    snprintf(note, sizeof(note), "%.0f us CPU", m->polls_per_s > 0 ? m->hub_cpu_pct * 1e4 / m->polls_per_s : 0);
    row_val(name, v, note, "", "");
    snprintf(v, sizeof(v), "%.0f", m->parked_avg);
    snprintf(note, sizeof(note), "of %d", o->rss.polls);
    row_val("  polls parked on average (Little's law)", v, note, "", "");
    snprintf(v, sizeof(v), "%lld", (long long) m->open_streams);
    snprintf(note, sizeof(note), "of %d", o->rss.streams);
    row_val("  SSE streams open in the hub", v, note, "", "");
    snprintf(v, sizeof(v), "%.1f s", m->ramp_s);
    snprintf(note, sizeof(note), "%llu retried", (unsigned long long) m->reconnects);
    row_val("  time until every connection was served", v, note, "", "");
    if (o->rss.loaded_iters == 0)
        return;
    row_lat("wake latency, 1 poller, all of them held", &res->rss.wake_us, "", 0);
    row_lat("SSE POST -> user.message, all of them held", &res->rss.echo_us, "", 0);
    row_lat("SSE POST -> agent.message, all of them held", &res->rss.reply_us, "", 0);
}

static void report(const struct opts *o, struct results *res)
{
    const struct bench_cycles_result *c = &res->cyc;
    char name[96], v[32], note[32];

    printf("\n" ROW, "measurement", "p50 / value", "p99", "n", "target", "result");
    if (o->phases & PHASE_WAKE) {
        row_lat("wake latency, 1 parked poller", &res->wake1, "p50 <= 1 ms", 1000);
        snprintf(name, sizeof(name), "wake latency, %d parked pollers", o->wake_many);
        row_lat(name, &res->wake_many, "p50 <= 1 ms", 1000);
    }
    if (o->phases & PHASE_CYCLES) {
        snprintf(name, sizeof(name), "work cycles/s, %d pollers", o->cycle_workers);
        snprintf(v, sizeof(v), "%.0f/s", c->cycles_per_s);
        snprintf(note, sizeof(note), "over %.1f s", c->elapsed_s);
        row_val(name, v, note, ">= 2000/s", c->cycles_per_s >= 2000 ? "met" : "NOT MET");
        snprintf(v, sizeof(v), "%.0f us", c->hub_cpu_us_per_cycle);
        snprintf(note, sizeof(note), "%.0f/s", 1e6 / c->hub_cpu_us_per_cycle);
        row_val("  hub CPU per cycle; cycles/s at 100% CPU", v, note, "", "");
        snprintf(v, sizeof(v), "%.0f%%", c->hub_cpu_pct);
        snprintf(note, sizeof(note), "%.0f%% waiting", c->hub_wait_pct);
        row_val("  hub on a CPU / runnable, waiting for one", v, note, "", "");
        snprintf(v, sizeof(v), "%.0f%%", c->client_cpu_pct);
        row_val("  this load generator on a CPU", v, "", "", "");
        row_lat("  one cycle (4 requests), per poller", &res->cyc.cycle_us, "", 0);
        snprintf(v, sizeof(v), "%.0f/s", c->enqueue_per_s);
        row_val("  health-check enqueues/s, 8 connections", v, "", "", "");
    }
    if (o->phases & PHASE_SSE) {
        row_lat("SSE delivery, POST -> user.message frame", &res->echo, "", 0);
        row_lat("SSE delivery, POST -> agent.message frame", &res->reply, "", 0);
    }
    if (o->phases & PHASE_RSS)
        report_rss(o, res);
}

static int run(struct bench *b, struct opts *o, struct results *res)
{
    struct bench_env wake_env, cyc_env, sse_env, park_env;
    char agent[64], session[64];
    int r = bench_env_new(b, "bench-wake", &wake_env);

    if (r == 0)
        r = bench_env_new(b, "bench-cycles", &cyc_env);
    if (r == 0)
        r = bench_env_new(b, "bench-sse", &sse_env);
    if (r == 0)
        r = bench_env_new(b, "bench-park", &park_env);
    if (r == 0)
        r = bench_agent_new(b, agent, sizeof(agent));
    if (r == 0)
        r = bench_session_new(b, agent, sse_env.id, session, sizeof(session));
    if (r < 0)
        return r;

    if (o->phases & PHASE_WAKE) {
        fprintf(stderr, "bench: wake latency, 1 poller, %d samples\n", o->wake_iters);
        r = bench_wake(b, &wake_env, 1, o->wake_iters, o->wake_iters / 10, PHASE_MAX_S, &res->wake1);
        if (r == 0) {
            fprintf(stderr, "bench: wake latency, %d pollers, %d samples\n", o->wake_many, o->wake_iters);
            r = bench_wake(b, &wake_env, o->wake_many, o->wake_iters, o->wake_iters / 10, PHASE_MAX_S,
                           &res->wake_many);
        }
    }
    if (r == 0 && (o->phases & PHASE_SSE)) {
        fprintf(stderr, "bench: SSE delivery, %d samples\n", o->sse_iters);
        r = bench_sse(b, session, o->sse_iters, o->sse_iters / 10, PHASE_MAX_S, &res->echo, &res->reply);
    }
    if (r == 0 && (o->phases & PHASE_CYCLES)) {
        fprintf(stderr, "bench: work cycles, %d pollers, %.0f s\n", o->cycle_workers, o->cycle_seconds);
        r = bench_cycles(b, &cyc_env, o->cycle_workers, o->cycle_seconds, &res->cyc);
    }
    if (r == 0 && (o->phases & PHASE_RSS)) {
        fprintf(stderr, "bench: holding %d long-polls + %d SSE streams over %d sessions\n", o->rss.polls,
                o->rss.streams, o->rss.sessions);
        o->rss.park_env = &park_env;
        o->rss.wake_env = &wake_env;
        o->rss.agent_id = agent;
        o->rss.sse_session = session;
        r = bench_rss(b, &o->rss, &res->rss);
    }
    return r;
}

int main(int argc, char **argv)
{
    struct opts o = {
        .wake_iters = 2000, .wake_many = 100, .cycle_workers = 8, .cycle_seconds = 10, .sse_iters = 1000,
        .phases = PHASE_ALL,
        .rss = { .polls = 5000, .streams = 5000, .sessions = 500, .hold_s = 17, .loaded_iters = 300,
                 .loaded_max_s = 15 },
    };
    struct bench b = { 0 };
    struct results res = { 0 };

    int p = parse_opts(argc, argv, &o);
    if (p != 0)
        return p < 0 ? 2 : 0;
    int r = setup(&b, &o);
    if (r == 0)
        r = run(&b, &o, &res);
    if (r == 0)
        report(&o, &res);
    else
        fprintf(stderr, "bench: failed (%s)\n", r == -ETIMEDOUT ? "timeout" : "see above");
    bench_samples_done(&res.wake1);
    bench_samples_done(&res.wake_many);
    bench_samples_done(&res.echo);
    bench_samples_done(&res.reply);
    bench_samples_done(&res.cyc.cycle_us);
    bench_samples_done(&res.rss.wake_us);
    bench_samples_done(&res.rss.echo_us);
    bench_samples_done(&res.rss.reply_us);
    if (b.ctl)
        evhttp_connection_free(b.ctl);
    if (b.base)
        event_base_free(b.base);
    return r == 0 ? 0 : 1;
}
