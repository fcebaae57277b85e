/* test_slurm.c - the Slurm executor's pure parts: options and their
 * validation, task-line options, the job state -> future mapping, exit codes,
 * and the parsers of sbatch/squeue/scontrol/sacct output on text captured
 * from a real Slurm 22.05 single-node cluster (tests/fixtures/slurm_*.txt;
 * slurm_sacct_twice.txt is written by hand after the research note's OOM job,
 * which the completion log records twice).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "slurm.h"
#include "strbuf.h"

static char *fixture(const char *name)
{
	const char *src = getenv("PCFS_SOURCE_DIR");
	char path[4096];
	snprintf(path, sizeof path, "%s/tests/fixtures/%s", src ? src : ".", name);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	static char buf[65536];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static void test_state_fate(void **state)
{
	(void)state;
	assert_int_equal(slurm_state_fate("PENDING"), SF_PENDING);
	assert_int_equal(slurm_state_fate("CONFIGURING"), SF_PENDING);
	assert_int_equal(slurm_state_fate("RUNNING"), SF_RUNNING);
	assert_int_equal(slurm_state_fate("COMPLETING"), SF_RUNNING);
	assert_int_equal(slurm_state_fate("COMPLETED"), SF_DONE);
	assert_int_equal(slurm_state_fate("FAILED"), SF_FAILED);
	assert_int_equal(slurm_state_fate("TIMEOUT"), SF_FAILED);
	assert_int_equal(slurm_state_fate("OUT_OF_MEMORY"), SF_FAILED);
	assert_int_equal(slurm_state_fate("NODE_FAIL"), SF_FAILED);
	assert_int_equal(slurm_state_fate("CANCELLED"), SF_CANCELLED);
	assert_int_equal(slurm_state_fate("CANCELLED+"), SF_CANCELLED);
	assert_int_equal(slurm_state_fate("CANCELLED by 0"), SF_CANCELLED);
	assert_int_equal(slurm_state_fate("COMPLETEDX"), SF_UNKNOWN);
	assert_int_equal(slurm_state_fate(""), SF_UNKNOWN);
	assert_true(slurm_fate_final(SF_DONE));
	assert_false(slurm_fate_final(SF_RUNNING));
	assert_string_equal(slurm_state_reason("TIMEOUT"), "the job reached its time limit");
	assert_string_equal(slurm_state_reason("COMPLETED"), "");
}

static void test_exitcode(void **state)
{
	(void)state;
	int c = 99;
	assert_int_equal(slurm_exitcode("3:0", &c), 0);
	assert_int_equal(c, 3);
	assert_int_equal(slurm_exitcode("0:9", &c), 0);
	assert_int_equal(c, -9);
	assert_int_equal(slurm_exitcode("0:15", &c), 0);
	assert_int_equal(c, -15);
	assert_int_equal(slurm_exitcode("0:0", &c), 0);
	assert_int_equal(c, 0);
	assert_int_equal(slurm_exitcode("0:125", &c), 0);
	assert_int_equal(c, -125);
	assert_int_equal(slurm_exitcode("3", &c), -EINVAL);
	assert_int_equal(slurm_exitcode("x:0", &c), -EINVAL);
	assert_int_equal(slurm_exitcode("3:", &c), -EINVAL);
	assert_int_equal(slurm_exitcode("256:0", &c), -EINVAL);
	assert_int_equal(slurm_exitcode("-1:0", &c), -EINVAL);
}

static void test_opts(void **state)
{
	(void)state;
	struct slurm_opts o = { 0 };
	char err[256];
	assert_int_equal(slurm_opt_apply(&o, "partition", "debug", err, sizeof err), 1);
	assert_string_equal(o.partition, "debug");
	assert_int_equal(slurm_opt_apply(&o, "account", "proj-1.a_b", err, sizeof err), 1);
	assert_int_equal(slurm_opt_apply(&o, "mem", "1.5G", err, sizeof err), 1);
	assert_int_equal(o.mem_mib, 1536);
	assert_int_equal(slurm_opt_apply(&o, "mem", "1500k", err, sizeof err), 1);
	assert_int_equal(o.mem_mib, 2);   /* rounded up to whole MiB */
	assert_int_equal(slurm_opt_apply(&o, "cpus", "4", err, sizeof err), 1);
	assert_int_equal(o.cpus, 4);
	assert_int_equal(slurm_opt_apply(&o, "slurm_time", "90s", err, sizeof err), 1);
	assert_int_equal(o.time_min, 2);
	assert_int_equal(slurm_opt_apply(&o, "slurm_time", "2h", err, sizeof err), 1);
	assert_int_equal(o.time_min, 120);
	/* not ours */
	assert_int_equal(slurm_opt_apply(&o, "time", "5", err, sizeof err), 0);
	assert_int_equal(slurm_opt_apply(&o, "workers", "5", err, sizeof err), 0);
	/* bad values, with reasons */
	assert_int_equal(slurm_opt_apply(&o, "partition", "a b", err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "partition="));
	assert_int_equal(slurm_opt_apply(&o, "partition", "", err, sizeof err), -EINVAL);
	assert_int_equal(slurm_opt_apply(&o, "account", "x;rm", err, sizeof err), -EINVAL);
	assert_int_equal(slurm_opt_apply(&o, "mem", "12", err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "at least 1M"));
	assert_int_equal(slurm_opt_apply(&o, "mem", "lots", err, sizeof err), -EINVAL);
	assert_int_equal(slurm_opt_apply(&o, "cpus", "0", err, sizeof err), -EINVAL);
	assert_int_equal(slurm_opt_apply(&o, "cpus", "4097", err, sizeof err), -EINVAL);
	assert_int_equal(slurm_opt_apply(&o, "cpus", "-1", err, sizeof err), -EINVAL);
	assert_int_equal(slurm_opt_apply(&o, "slurm_time", "0", err, sizeof err), -EINVAL);
	assert_int_equal(slurm_opt_apply(&o, "slurm_time", "soon", err, sizeof err), -EINVAL);
	/* the failed ones changed nothing */
	assert_string_equal(o.partition, "debug");
	assert_int_equal(o.cpus, 4);

	assert_int_equal(slurm_minutes(1), 1);
	assert_int_equal(slurm_minutes(60000), 1);
	assert_int_equal(slurm_minutes(60001), 2);

	struct slurm_opts over = { .cpus = 8 };
	slurm_opts_merge(&o, &over);
	assert_int_equal(o.cpus, 8);
	assert_string_equal(o.partition, "debug");
	char buf[256] = "";
	slurm_opts_format(&o, buf, sizeof buf);
	assert_string_equal(buf, " partition=debug account=proj-1.a_b mem=2M cpus=8 slurm_time=120m");
}

static void line_opts(const char *line, const char *want, int rc_want, struct slurm_opts *o)
{
	char *out = NULL, err[256] = "";
	int rc = slurm_line_opts(line, strlen(line), o, &out, err, sizeof err);
	assert_int_equal(rc, rc_want);
	if (rc == 0) {
		assert_string_equal(out, want);
		free(out);
	} else {
		assert_true(err[0]);
	}
}

static void test_line_opts(void **state)
{
	(void)state;
	struct slurm_opts o = { 0 };
	line_opts("cpu 4 mem=2G ops=10 cpus=2", "cpu 4 ops=10", 0, &o);
	assert_int_equal(o.mem_mib, 2048);
	assert_int_equal(o.cpus, 2);
	memset(&o, 0, sizeof o);
	/* the mem workload's own options stay */
	line_opts("mem size=64M touch=50 partition=debug", "mem size=64M touch=50", 0, &o);
	assert_string_equal(o.partition, "debug");
	/* arguments are the program's, even when they look like options */
	memset(&o, 0, sizeof o);
	line_opts("exec ./simulate mem=3 --seed 7", "exec ./simulate mem=3 --seed 7", 0, &o);
	assert_int_equal(o.mem_mib, 0);
	line_opts("exec timeout=5s account=a ./sim  x   y", "exec timeout=5s ./sim  x   y", 0, &o);
	assert_string_equal(o.account, "a");
	line_opts("sh slurm_time=10m echo  'a  b'", "sh echo  'a  b'", 0, &o);
	assert_int_equal(o.time_min, 10);
	line_opts("sleep 2 time=1", "sleep 2 time=1", 0, &o);
	line_opts("cpu cpus=0", NULL, -EINVAL, &o);
	line_opts("cpu mem=x", NULL, -EINVAL, &o);
}

static void test_sh_quote(void **state)
{
	(void)state;
	struct strbuf b = STRBUF_INIT;
	slurm_sh_quote(&b, "it's $HOME");
	assert_string_equal(sb_cstr(&b), "'it'\\''s $HOME'");
	sb_free(&b);
}

static void test_sbatch(void **state)
{
	(void)state;
	uint64_t j = 0;
	assert_int_equal(slurm_parse_sbatch("123\n", &j), 0);
	assert_int_equal(j, 123);
	assert_int_equal(slurm_parse_sbatch("77;cluster\n", &j), 0);
	assert_int_equal(j, 77);
	assert_int_equal(slurm_parse_sbatch("", &j), -EINVAL);
	assert_int_equal(slurm_parse_sbatch("sbatch: error: x\n", &j), -EINVAL);
	assert_int_equal(slurm_parse_sbatch("12x\n", &j), -EINVAL);
	assert_int_equal(slurm_parse_sbatch("0\n", &j), -EINVAL);
}

static const struct slurm_job *find(const struct slurm_job *v, size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].id == id)
			return &v[i];
	return NULL;
}

static void test_squeue(void **state)
{
	(void)state;
	struct slurm_job v[16];
	size_t n = slurm_parse_squeue(fixture("slurm_squeue.txt"), v, 16);
	assert_int_equal(n, 8);
	const struct slurm_job *j = find(v, n, 12);
	assert_non_null(j);
	assert_string_equal(j->state, "CANCELLED");
	assert_string_equal(j->reason, "None");
	j = find(v, n, 7);
	assert_string_equal(j->state, "FAILED");
	assert_string_equal(j->reason, "NonZeroExitCode");
	j = find(v, n, 14);
	assert_int_equal(slurm_state_fate(j->state), SF_RUNNING);
	assert_false(j->have_exit);
	/* noise, array ids, empty fields are skipped; max is respected */
	n = slurm_parse_squeue("slurm_load_jobs error: x\n5_1|RUNNING|None\n|RUNNING|x\n8||None\n"
			       "9|PENDING|Resources\r\n", v, 16);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].id, 9);
	assert_string_equal(v[0].reason, "Resources");
	assert_int_equal(slurm_parse_squeue(fixture("slurm_squeue.txt"), v, 2), 2);
	assert_int_equal(slurm_parse_squeue("", v, 16), 0);
}

static void test_scontrol(void **state)
{
	(void)state;
	struct slurm_job j;
	assert_int_equal(slurm_parse_scontrol(fixture("slurm_scontrol_failed.txt"), &j), 0);
	assert_int_equal(j.id, 7);
	assert_string_equal(j.state, "FAILED");
	assert_string_equal(j.reason, "NonZeroExitCode");
	assert_true(j.have_exit);
	assert_int_equal(j.exitcode, 3);
	assert_int_equal(slurm_parse_scontrol(fixture("slurm_scontrol_signal.txt"), &j), 0);
	assert_int_equal(j.id, 10);
	assert_int_equal(j.exitcode, -9);
	assert_int_equal(slurm_parse_scontrol(fixture("slurm_scontrol_done.txt"), &j), 0);
	assert_string_equal(j.state, "COMPLETED");
	assert_int_equal(j.exitcode, 0);
	/* keys are matched whole: ArrayJobId= is not JobId= */
	assert_int_equal(slurm_parse_scontrol("ArrayJobId=5 JobState=RUNNING", &j), -EINVAL);
	assert_int_equal(slurm_parse_scontrol("slurm_load_jobs error: Invalid job id specified\n",
					      &j), -EINVAL);
}

static void test_sacct(void **state)
{
	(void)state;
	struct slurm_job j;
	const char *t = fixture("slurm_sacct.txt");
	assert_int_equal(slurm_parse_sacct(t, 7, &j), 0);
	assert_string_equal(j.state, "FAILED");
	assert_int_equal(j.exitcode, 3);
	assert_int_equal(slurm_parse_sacct(t, 10, &j), 0);
	assert_int_equal(j.exitcode, -9);
	assert_int_equal(slurm_parse_sacct(t, 12, &j), 0);
	assert_int_equal(slurm_state_fate(j.state), SF_CANCELLED);
	assert_int_equal(slurm_parse_sacct(t, 99, &j), -ENOENT);
	/* logged twice: the last line wins */
	assert_int_equal(slurm_parse_sacct(fixture("slurm_sacct_twice.txt"), 15, &j), 0);
	assert_string_equal(j.state, "OUT_OF_MEMORY");
	assert_int_equal(j.exitcode, -125);
}

static void test_transient(void **state)
{
	(void)state;
	assert_true(slurm_error_transient("sbatch: error: Batch job submission failed: Unable to "
					  "contact slurm controller (connect failure)\n"));
	assert_true(slurm_error_transient("squeue: error: Socket timed out on send/recv operation"));
	assert_false(slurm_error_transient("sbatch: error: invalid partition specified: nope\n"));
	assert_false(slurm_error_transient("sbatch: error: Memory specification can not be "
					   "satisfied\n"));
	assert_false(slurm_error_transient(""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state_fate), cmocka_unit_test(test_exitcode),
		cmocka_unit_test(test_opts),       cmocka_unit_test(test_line_opts),
		cmocka_unit_test(test_sh_quote),   cmocka_unit_test(test_sbatch),
		cmocka_unit_test(test_squeue),     cmocka_unit_test(test_scontrol),
		cmocka_unit_test(test_sacct),      cmocka_unit_test(test_transient),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
