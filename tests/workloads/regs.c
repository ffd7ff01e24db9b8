/*
 * Registers: live AVX (and AVX-512 where the CPU has it) vector registers,
 * general registers, a non-default MXCSR and x87 control word, all held by a
 * spin loop across the checkpoint, then stored and compared.
 */
#include "rckpt_test.h"

static volatile int stop_flag;
static uint8_t pattern[32][64] __attribute__((aligned(64)));
static uint8_t out[32][64] __attribute__((aligned(64)));
static uint64_t gp_in[8], gp_out[8];
static uint64_t kmask_in[7], kmask_out[7];

static void on_stop(int s)
{
	(void)s;
	stop_flag = 1;
}

#define LOAD_GP "mov 0(%[gi]), %%r8\n mov 8(%[gi]), %%r9\n mov 16(%[gi]), %%r10\n mov 24(%[gi]), %%r11\n" \
		"mov 32(%[gi]), %%r12\n mov 40(%[gi]), %%r13\n mov 48(%[gi]), %%r14\n mov 56(%[gi]), %%r15\n"
#define STORE_GP "mov %%r8, 0(%[go])\n mov %%r9, 8(%[go])\n mov %%r10, 16(%[go])\n mov %%r11, 24(%[go])\n" \
		"mov %%r12, 32(%[go])\n mov %%r13, 40(%[go])\n mov %%r14, 48(%[go])\n mov %%r15, 56(%[go])\n"
#define SPIN "1: pause\n cmpl $0, (%[flag])\n je 1b\n"

static void spin_avx(void)
{
	__asm__ volatile(
		LOAD_GP
		"vmovdqu 0*64(%[p]), %%ymm0\n vmovdqu 1*64(%[p]), %%ymm1\n vmovdqu 2*64(%[p]), %%ymm2\n vmovdqu 3*64(%[p]), %%ymm3\n"
		"vmovdqu 4*64(%[p]), %%ymm4\n vmovdqu 5*64(%[p]), %%ymm5\n vmovdqu 6*64(%[p]), %%ymm6\n vmovdqu 7*64(%[p]), %%ymm7\n"
		"vmovdqu 8*64(%[p]), %%ymm8\n vmovdqu 9*64(%[p]), %%ymm9\n vmovdqu 10*64(%[p]), %%ymm10\n vmovdqu 11*64(%[p]), %%ymm11\n"
		"vmovdqu 12*64(%[p]), %%ymm12\n vmovdqu 13*64(%[p]), %%ymm13\n vmovdqu 14*64(%[p]), %%ymm14\n vmovdqu 15*64(%[p]), %%ymm15\n"
		SPIN
		"vmovdqu %%ymm0, 0*64(%[o])\n vmovdqu %%ymm1, 1*64(%[o])\n vmovdqu %%ymm2, 2*64(%[o])\n vmovdqu %%ymm3, 3*64(%[o])\n"
		"vmovdqu %%ymm4, 4*64(%[o])\n vmovdqu %%ymm5, 5*64(%[o])\n vmovdqu %%ymm6, 6*64(%[o])\n vmovdqu %%ymm7, 7*64(%[o])\n"
		"vmovdqu %%ymm8, 8*64(%[o])\n vmovdqu %%ymm9, 9*64(%[o])\n vmovdqu %%ymm10, 10*64(%[o])\n vmovdqu %%ymm11, 11*64(%[o])\n"
		"vmovdqu %%ymm12, 12*64(%[o])\n vmovdqu %%ymm13, 13*64(%[o])\n vmovdqu %%ymm14, 14*64(%[o])\n vmovdqu %%ymm15, 15*64(%[o])\n"
		STORE_GP
		:
		: [p] "r"(pattern), [o] "r"(out), [flag] "r"(&stop_flag), [gi] "r"(gp_in), [go] "r"(gp_out)
		: "memory", "cc", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
		  "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",
		  "xmm13", "xmm14", "xmm15");
}

#define Z(i) "vmovdqu64 " #i "*64(%[p]), %%zmm" #i "\n"
#define ZS(i) "vmovdqu64 %%zmm" #i ", " #i "*64(%[o])\n"
static void spin_avx512(void)
{
	__asm__ volatile(
		LOAD_GP
		"kmovq 0(%[ki]), %%k1\n kmovq 8(%[ki]), %%k2\n kmovq 16(%[ki]), %%k3\n kmovq 24(%[ki]), %%k4\n"
		"kmovq 32(%[ki]), %%k5\n kmovq 40(%[ki]), %%k6\n kmovq 48(%[ki]), %%k7\n"
		Z(0) Z(1) Z(2) Z(3) Z(4) Z(5) Z(6) Z(7) Z(8) Z(9) Z(10) Z(11) Z(12) Z(13) Z(14) Z(15)
		Z(16) Z(17) Z(18) Z(19) Z(20) Z(21) Z(22) Z(23) Z(24) Z(25) Z(26) Z(27) Z(28) Z(29) Z(30) Z(31)
		SPIN
		ZS(0) ZS(1) ZS(2) ZS(3) ZS(4) ZS(5) ZS(6) ZS(7) ZS(8) ZS(9) ZS(10) ZS(11) ZS(12) ZS(13) ZS(14) ZS(15)
		ZS(16) ZS(17) ZS(18) ZS(19) ZS(20) ZS(21) ZS(22) ZS(23) ZS(24) ZS(25) ZS(26) ZS(27) ZS(28) ZS(29) ZS(30) ZS(31)
		"kmovq %%k1, 0(%[ko])\n kmovq %%k2, 8(%[ko])\n kmovq %%k3, 16(%[ko])\n kmovq %%k4, 24(%[ko])\n"
		"kmovq %%k5, 32(%[ko])\n kmovq %%k6, 40(%[ko])\n kmovq %%k7, 48(%[ko])\n"
		STORE_GP
		:
		: [p] "r"(pattern), [o] "r"(out), [flag] "r"(&stop_flag), [gi] "r"(gp_in), [go] "r"(gp_out),
		  [ki] "r"(kmask_in), [ko] "r"(kmask_out)
		: "memory", "cc", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15");
}

int main(void)
{
	struct sigaction sa;
	unsigned int mxcsr_in = 0x1f80 | 0x8000 | 0x40 | 0x2000, mxcsr_out = 0;
	unsigned short cw_in = 0x027f, cw_out = 0;
	int wide = __builtin_cpu_supports("avx512f");
	int n = wide ? 32 : 16, width = wide ? 64 : 32, i;

	t_init(1);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigaction(SIGUSR2, &sa, NULL);
	t_random(pattern, sizeof(pattern));
	t_random(gp_in, sizeof(gp_in));
	t_random(kmask_in, sizeof(kmask_in));
	t_say("VECTOR %s", wide ? "avx512" : "avx");
	t_ready();
	__asm__ volatile("ldmxcsr %0" : : "m"(mxcsr_in));
	__asm__ volatile("fldcw %0" : : "m"(cw_in));
	if (wide)
		spin_avx512();
	else
		spin_avx();
	__asm__ volatile("stmxcsr %0" : "=m"(mxcsr_out));
	__asm__ volatile("fnstcw %0" : "=m"(cw_out));

	for (i = 0; i < n; i++)
		CHECK(memcmp(pattern[i], out[i], width) == 0, "vector register %d changed", i);
	for (i = 0; i < 8; i++)
		CHECK(gp_in[i] == gp_out[i], "r%d changed", i + 8);
	if (wide) {
		/* k registers are 64 bits with AVX512BW, 16 without. */
		uint64_t m = __builtin_cpu_supports("avx512bw") ? ~0ull : 0xffffull;
		for (i = 0; i < 7; i++)
			CHECK((kmask_in[i] & m) == (kmask_out[i] & m), "k%d changed", i + 1);
	}
	CHECK(mxcsr_out == mxcsr_in, "mxcsr %#x, was %#x", mxcsr_out, mxcsr_in);
	CHECK(cw_out == cw_in, "x87 control word %#x, was %#x", cw_out, cw_in);
	return t_done();
}
