/*
 * falseshare: false and true sharing on four CPUs. Thread k (pinned to CPU k) increments counters.value[k],
 * its own u64 in one 64-byte line shared by all four (false sharing), and atomically adds 1 to
 * shared_total.value, alone in another line (true sharing), N times each (argv[1], default 100000).
 * Each increment's store is the instruction at `falseshare_inc`, each atomic add the one at `falseshare_add`.
 * MEMTAP_START/STOP enclose the threads' work (from the barrier that releases them to the last join).
 * Prints `falseshare: counters=N,N,N,N total=4N`.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "memtap.h"

#define THREADS 4

struct counter_line {
    uint64_t value[THREADS];
} __attribute__((aligned(64)));

struct total_line {
    uint64_t value;
} __attribute__((aligned(64)));

struct counter_line counters;
struct total_line shared_total;
static pthread_barrier_t start_barrier;
static long iterations = 100000;

/* counters.value[k] += 1 with its store at falseshare_inc; shared_total.value += 1 atomically at
 * falseshare_add. Not inlined or cloned: the labels must name one instruction each. */
__attribute__((noipa)) static void work(uint64_t *mine, uint64_t *total, long n)
{
    for (long i = 0; i < n; i++) {
#if defined(__x86_64__)
        __asm__ volatile(".globl falseshare_inc\nfalseshare_inc: incq (%0)\n"
                         ".globl falseshare_add\nfalseshare_add: lock addq $1, (%1)"
                         :: "r"(mine), "r"(total) : "memory", "cc");
#elif defined(__aarch64__)
        uint64_t tmp;
        __asm__ volatile("ldr %0, [%1]\n add %0, %0, #1\n"
                         ".globl falseshare_inc\nfalseshare_inc: str %0, [%1]\n"
                         "mov %0, #1\n.arch_extension lse\n"
                         ".globl falseshare_add\nfalseshare_add: stadd %0, [%2]"
                         : "=&r"(tmp) : "r"(mine), "r"(total) : "memory");
#elif defined(__riscv)
        uint64_t tmp;
        __asm__ volatile("ld %0, 0(%1)\n addi %0, %0, 1\n"
                         ".globl falseshare_inc\nfalseshare_inc: sd %0, 0(%1)\n"
                         "li %0, 1\n"
                         ".globl falseshare_add\nfalseshare_add: amoadd.d zero, %0, (%2)"
                         : "=&r"(tmp) : "r"(mine), "r"(total) : "memory");
#else
#error "falseshare: no increment for this architecture"
#endif
    }
}

static void *worker(void *arg)
{
    long k = (long)arg;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(k, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
        perror("falseshare: sched_setaffinity");
        exit(2);
    }
    pthread_barrier_wait(&start_barrier);
    work(&counters.value[k], &shared_total.value, iterations);
    return NULL;
}

int main(int argc, char **argv)
{
    pthread_t threads[THREADS];
    if (argc > 1)
        iterations = strtol(argv[1], NULL, 0);
    pthread_barrier_init(&start_barrier, NULL, THREADS + 1);
    for (long k = 0; k < THREADS; k++) {
        if (pthread_create(&threads[k], NULL, worker, (void *)k) != 0) {
            fprintf(stderr, "falseshare: pthread_create failed\n");
            return 2;
        }
    }
    MEMTAP_START();
    pthread_barrier_wait(&start_barrier);
    for (int k = 0; k < THREADS; k++)
        pthread_join(threads[k], NULL);
    MEMTAP_STOP();
    printf("falseshare: counters=%lu,%lu,%lu,%lu total=%lu\n", (unsigned long)counters.value[0],
           (unsigned long)counters.value[1], (unsigned long)counters.value[2], (unsigned long)counters.value[3],
           (unsigned long)shared_total.value);
    for (int k = 0; k < THREADS; k++)
        if (counters.value[k] != (uint64_t)iterations)
            return 1;
    return shared_total.value == (uint64_t)(THREADS * iterations) ? 0 : 1;
}
