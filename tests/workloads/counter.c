/* A counter that keeps ticking in memory; checks after the trigger that it went on. */
#include "rckpt_test.h"

static volatile unsigned long ticks;

int main(void)
{
	unsigned long before;

	t_init(1);
	t_ready();
	while (!t_trigger) {
		struct timespec ts = { 0, 1000000 };
		ticks++;
		nanosleep(&ts, NULL);
	}
	before = ticks;
	CHECK(before > 0, "no ticks");
	t_say("TICKS %lu", before);
	return t_done();
}
