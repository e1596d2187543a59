/*
 * sysheavy: N getppid system calls (argv[1], default 10000) through raw_syscall between MEMTAP_START and
 * MEMTAP_STOP, so that a profile of the traced part is mostly the kernel's system-call path.
 * Prints `sysheavy: N getppid calls, ppid=1` (init is the parent).
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>

#include "memtap.h"
#include "rawsys.h"

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 0) : 10000;
    long ppid = -1;
    MEMTAP_START();
    for (long i = 0; i < n; i++)
        ppid = raw_syscall(SYS_getppid, 0, 0, 0, 0, 0, 0);
    MEMTAP_STOP();
    printf("sysheavy: %ld getppid calls, ppid=%ld\n", n, ppid);
    return ppid == 1 ? 0 : 1;
}
