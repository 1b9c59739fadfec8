/*
 * Randomised fault schedules (see sim_sched.h). The schedule draws from the
 * simulator's own PRNG, so the seed alone reproduces a run. Compaction is
 * either trim or snapshot within one run, never both, so the simulator's
 * snapshot check stays exact. In half the runs stop-signs are proposed
 * under chaos and the simulator moves nodes to the next configuration as
 * the application does (sim_opts.follow_reconfig).
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include "sim_sched.h"
#include "sim.h"
#include "storage_mem.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_RECONFIGS 4 /* stop-signs proposed per run, at most */

static uint32_t pick(struct sim *s, uint32_t n)
{
	return (uint32_t)(sim_rand(s) % n);
}

static bool stable(struct sim *s, void *arg)
{
	(void)arg;
	int l = sim_leader(s);
	if (l < 0)
		return false;
	struct opx_ballot b = opx_promise(sim_core(s, (uint32_t)l));
	for (uint32_t i = 0; i < sim_n(s); i++) {
		struct opx *px = sim_core(s, i);
		bool acc;
		if (!px)
			return false;
		opx_current_leader(px, &acc);
		struct opx_ballot p = opx_promise(px);
		struct opx_status st;
		opx_get_status(px, &st);
		if (!acc || !opx_ballot_eq(&p, &b) || !st.quorum_connected ||
		    !opx_ballot_eq(&st.ble_leader, &b))
			return false;
		/* a stored stop-sign: the configuration is about to end */
		if (sim_stopsign_stored(s, i))
			return false;
	}
	return true;
}

/* Stable, and still stable a few election rounds later. */
static bool settle(struct sim *s, const struct sim_opts *o, uint64_t max_ticks)
{
	uint64_t end = sim_now_ticks(s) + max_ticks;
	while (sim_now_ticks(s) < end) {
		if (!sim_run_until(s, stable, NULL, end - sim_now_ticks(s)))
			return false;
		int l = sim_leader(s);
		struct opx_ballot b = opx_promise(sim_core(s, (uint32_t)l));
		if (!sim_run_ticks(s, 3 * (uint64_t)o->election_ticks))
			return false;
		if (stable(s, NULL) && sim_leader(s) == l) {
			struct opx_ballot b2 = opx_promise(sim_core(s, (uint32_t)l));
			if (opx_ballot_eq(&b, &b2))
				return true;
		}
	}
	return false;
}

static bool decided_upto(struct sim *s, void *arg)
{
	return sim_all_decided(s, *(const uint64_t *)arg);
}

/* A flexible quorum for n nodes (read + write > n), or majorities. */
static void flexible(uint32_t n, uint32_t *read_q, uint32_t *write_q)
{
	*read_q = n == 5 ? 4 : n == 7 ? 5 : 0;
	*write_q = n == 5 ? 2 : n == 7 ? 3 : 0;
}

static void setup(uint64_t seed, struct sim_opts *o, uint64_t *rng)
{
	uint64_t x = seed;
#define R(n) ((uint32_t)((x = x * 6364136223846793005ull + 1442695040888963407ull) >> 33) % (n))
	uint32_t roll = R(10);
	uint32_t n = roll < 5 ? 3 : roll < 8 ? 5 : 7;
	sim_opts_default(o, n);
	o->seed = seed;
	if (R(3) == 0) /* non-contiguous ids */
		for (uint32_t i = 0; i < n; i++)
			o->ids[i] = 3 + 7 * i + R(5);
	if (n > 3 && R(3) == 0)
		flexible(n, &o->read_quorum, &o->write_quorum);
	for (uint32_t i = 0; i < n; i++)
		o->priorities[i] = R(4) == 0 ? R(3) : 0;
	o->election_ticks = 1 + R(3);
	o->resend_ticks = 2 + R(6);
	o->flush_ticks = 1 + R(4);
	o->batch_size = R(3) == 0 ? 1 + R(5) : 1;
	o->snapshots = R(2) == 0;
	o->snapshot_only_when_compacted = o->snapshots && R(2) == 0; /* production's */
	o->manual_sync = R(2) == 0;
	/* From the seed, not the generator: the schedules of older seeds (and
	 * the regression seeds) stay what they were. */
	o->sync_after_send = (seed * 0x9e3779b97f4a7c15ull) >> 63;
	o->decide_with_next = ((seed * 0x9e3779b97f4a7c15ull) >> 62) & 1;
	o->follow_reconfig = R(2) == 0;
	o->net.delay_min = 1;
	/* BLE needs replies within the round that asked: keep the round trip
	 * under one election round (as any deployment must). */
	o->net.delay_max = 2 + R(o->election_ticks * o->tick_len / 2 - 2);
	o->net.drop_pm = R(2) ? R(150) : 0;
	o->net.dup_pm = R(2) ? R(80) : 0;
	o->net.reorder_pm = R(2) ? R(100) : 0;
	*rng = x;
#undef R
}

/* Proposes the next configuration at node a: the same members, maybe
 * other quorums. */
static void reconfigure(struct sim *s, uint32_t a, uint32_t *reconfigs)
{
	if (*reconfigs >= MAX_RECONFIGS || !sim_up(s, a))
		return;
	struct opx_cluster_config next = *sim_cluster(s, a);
	next.config_id++;
	next.read_quorum = next.write_quorum = 0;
	if (pick(s, 2))
		flexible(next.n_nodes, &next.read_quorum, &next.write_quorum);
	uint8_t md[8];
	uint32_t md_len = pick(s, sizeof(md) + 1);
	for (uint32_t k = 0; k < md_len; k++)
		md[k] = (uint8_t)sim_rand(s);
	if (sim_reconfigure(s, a, &next, md, md_len) == 0)
		(*reconfigs)++;
}

static void chaos_tick(struct sim *s, const struct sim_opts *o, uint32_t *reconfigs)
{
	uint32_t n = sim_n(s);
	uint32_t a = pick(s, n), b = pick(s, n);
	uint32_t roll = pick(s, 1000);
	if (roll < 400) {
		sim_append(s, a, 16 + pick(s, 64));
	} else if (roll < 480) {
		if (a != b)
			sim_cut(s, a, b, pick(s, 2));
	} else if (roll < 600) {
		if (a != b)
			sim_connect(s, a, b, true);
	} else if (roll < 630) {
		if (sim_up(s, a) && o->manual_sync && pick(s, 2))
			sim_crash_in_next_call(s, a, true);
		else if (sim_up(s, a))
			sim_crash(s, a, o->manual_sync);
	} else if (roll < 700) {
		if (!sim_up(s, a))
			sim_restart(s, a);
	} else if (roll < 715) {
		sim_fail_write(s, a, 1 + pick(s, 6), pick(s, 4) == 0);
	} else if (roll < 740) {
		struct opx *px = sim_core(s, a);
		if (px) {
			uint64_t d = opx_decided_idx(px);
			if (o->snapshots)
				sim_snapshot(s, a, pick(s, 2), d ? pick(s, (uint32_t)d + 1) : 0,
					     pick(s, 2));
			else
				sim_trim(s, a, pick(s, 2), d ? pick(s, (uint32_t)d + 1) : 0);
		}
	} else if (roll < 748) {
		sim_try_become_leader(s, a);
	} else if (roll < 760) {
		if (a != b)
			sim_reconnected(s, a, sim_id(s, b));
	} else if (roll < 770) {
		sim_isolate(s, a);
	} else if (roll < 780) {
		sim_heal(s);
	} else if (roll < 800) {
		sim_fail_alloc(s, a, 1 + pick(s, 60));
	} else if (roll < 806) {
		if (o->follow_reconfig)
			reconfigure(s, a, reconfigs);
	}
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

/* A fresh directory for RocksDB logs: tmpfs if there is one (the stores
 * sync every write). */
static bool make_tmpdir(char *dir, size_t len)
{
	const char *parent = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
	snprintf(dir, len, "%s/omnifs-sim-XXXXXX", parent ? parent : "/tmp");
	return mkdtemp(dir) != NULL;
}

void sim_sched_run(uint64_t seed, uint32_t chaos_ticks, struct sim_sched_result *r)
{
	struct sim_sched_opts so = {.chaos_ticks = chaos_ticks};
	sim_sched_run_opts(seed, &so, r);
}

void sim_sched_run_log(uint64_t seed, uint32_t chaos_ticks, struct sim_sched_result *r, void *log)
{
	struct sim_sched_opts so = {.chaos_ticks = chaos_ticks, .log = log};
	sim_sched_run_opts(seed, &so, r);
}

static void run(uint64_t seed, const struct sim_sched_opts *so, struct sim_opts *o,
		struct sim_sched_result *r);

void sim_sched_run_opts(uint64_t seed, const struct sim_sched_opts *so, struct sim_sched_result *r)
{
	memset(r, 0, sizeof(*r));
	struct sim_opts o;
	uint64_t unused;
	setup(seed, &o, &unused);
	char dir[256];
	bool rocks = so->rocksdb_one_in && seed % so->rocksdb_one_in == 0;
	if (rocks) {
		if (!make_tmpdir(dir, sizeof(dir))) {
			snprintf(r->err, sizeof(r->err), "seed %llu: cannot make a directory",
				 (unsigned long long)seed);
			return;
		}
		o.rocksdb_dir = dir;
		o.manual_sync = false;
		r->rocksdb = true;
	}
	run(seed, so, &o, r);
	if (rocks)
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void run(uint64_t seed, const struct sim_sched_opts *so, struct sim_opts *op,
		struct sim_sched_result *r)
{
	const struct sim_opts o = *op;
	FILE *log = so->log;
	uint32_t chaos_ticks = so->chaos_ticks ? so->chaos_ticks : 150;
	struct sim *s = sim_new(&o);
	if (!s) {
		snprintf(r->err, sizeof(r->err), "seed %llu: cannot build the cluster",
			 (unsigned long long)seed);
		return;
	}
	uint32_t reconfigs = 0;
	if (log && getenv("SIM_TRACE"))
		sim_set_trace(s, log);
	const char *phase = "chaos";
	bool ok = true;
	for (uint32_t t = 0; ok && t < chaos_ticks; t++) {
		uint32_t actions = 1 + pick(s, 3);
		for (uint32_t k = 0; k < actions; k++)
			chaos_tick(s, &o, &reconfigs);
		ok = sim_run_ticks(s, 1);
	}
	if (ok) {
		phase = "stabilising after heal";
		sim_heal(s);
		/* healed: links are up and lose nothing (a forwarded proposal
		 * that is lost is gone, as in OmniPaxos; clients retry) */
		struct sim_net calm = o.net;
		calm.drop_pm = 0;
		sim_set_net(s, &calm);
		for (uint32_t i = 0; i < sim_n(s); i++) {
			sim_fail_write(s, i, 0, false);
			sim_fail_alloc(s, i, 0);
			sim_crash_in_next_call(s, i, false);
			if (!sim_up(s, i))
				if (sim_restart(s, i) && log)
					fprintf(log, "restart of %u failed\n", i);
		}
		uint64_t rounds = (uint64_t)o.election_ticks;
		ok = settle(s, &o, SIM_SCHED_STABLE_ROUNDS * rounds + 4 * o.resend_ticks);
	}
	if (ok) {
		phase = "deciding probes";
		/* all follow one leader now: the probes land after its log */
		uint32_t l = (uint32_t)sim_leader(s);
		uint64_t want = sim_base(s, l) + opx_accepted_idx(sim_core(s, l));
		if (want < sim_max_decided(s))
			ok = false; /* the leader lost decided entries */
		for (uint32_t i = 0; i < sim_n(s); i++)
			if (sim_append(s, i, 32) && log)
				fprintf(log, "probe at %u refused\n", i);
		want += sim_n(s);
		if (log)
			sim_dump(s, log);
		ok = ok && sim_run_until(s, decided_upto, &want,
					 SIM_SCHED_DECIDE_ROUNDS * (uint64_t)o.election_ticks +
						 4 * o.resend_ticks + 2 * o.flush_ticks);
	}
	r->ticks = sim_now_ticks(s);
	r->appended = sim_appended(s);
	r->decided = sim_max_decided(s);
	r->fail_stops = sim_fail_stops(s);
	r->delivered = sim_delivered(s);
	r->configs = sim_configs(s);
	r->alloc_failures = sim_alloc_failures(s);
	r->ok = ok && !sim_error(s);
	if (!r->ok) {
		if (sim_error(s))
			snprintf(r->err, sizeof(r->err), "%s", sim_error(s));
		else
			snprintf(r->err, sizeof(r->err),
				 "seed %llu: liveness: %s not done by tick %llu (n=%u election=%u "
				 "resend=%u batch=%u configs=%u%s%s%s)",
				 (unsigned long long)seed, phase,
				 (unsigned long long)sim_now_ticks(s), sim_n(s), o.election_ticks,
				 o.resend_ticks, o.batch_size, sim_configs(s),
				 o.rocksdb_dir ? " rocksdb" : "",
				 o.sync_after_send ? " sync-after-send" : "",
				 o.decide_with_next ? " decide-with-next" : "");
		if (log)
			sim_dump(s, log);
	}
	sim_destroy(&s);
}
