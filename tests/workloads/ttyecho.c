/*
 * A task that talks to its terminal (stdin/stdout): after the trigger it asks
 * for a line, reads it from stdin and checks it.
 */
#include "rckpt_test.h"

int main(void)
{
	char line[128] = { 0 };

	t_init(1);
	t_ready();
	t_wait_trigger();
	CHECK(isatty(0) && isatty(1), "stdin or stdout is not a terminal");
	printf("PROMPT\n");
	fflush(stdout);
	CHECK(fgets(line, sizeof(line), stdin) != NULL, "nothing to read: %s", strerror(errno));
	CHECK(strcmp(line, "hello from the test\n") == 0, "read %s", line);
	printf("ECHO %s", line);
	return t_done();
}
