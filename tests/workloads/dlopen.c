/*
 * Maps a shared library by dlopen (argv[1]) and calls into it after the trigger.
 */
#include "rckpt_test.h"
#include <dlfcn.h>

int main(int argc, char **argv)
{
	void *h;
	double (*f)(double);

	if (argc < 2)
		return 2;
	t_init(1);
	h = dlopen(argv[1], RTLD_NOW);
	if (!h) {
		printf("dlopen: %s\n", dlerror());
		return 3;
	}
	f = (double (*)(double))dlsym(h, "cbrt");
	t_ready();
	t_wait_trigger();
	CHECK(f && f(27.0) == 3.0, "cbrt from the library");
	return t_done();
}
