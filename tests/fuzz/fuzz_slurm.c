/* fuzz_slurm.c - the parsers of what sbatch, squeue, scontrol and sacct
 * print: a cluster's output is not ours, so any bytes give a clean result,
 * strings NUL-terminated within their fields and counts within bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "slurm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_job(const struct slurm_job *j)
{
	if (!memchr(j->state, '\0', sizeof(j->state)) || !memchr(j->reason, '\0', sizeof(j->reason)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	struct slurm_job jobs[8], j;
	uint64_t id = 0;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	(void)slurm_parse_sbatch(text, &id);
	size_t n = slurm_parse_squeue(text, jobs, 8);
	if (n > 8)
		abort();
	for (size_t i = 0; i < n; i++)
		check_job(&jobs[i]);
	memset(&j, 0, sizeof(j));
	if (slurm_parse_scontrol(text, &j) == 0)
		check_job(&j);
	memset(&j, 0, sizeof(j));
	if (slurm_parse_sacct(text, size ? data[0] : 1, &j) == 0)
		check_job(&j);
	(void)slurm_error_transient(text);
	free(text);
	return 0;
}
