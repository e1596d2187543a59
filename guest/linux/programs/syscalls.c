/*
 * syscalls: a fixed sequence of eleven system calls between MEMTAP_START and MEMTAP_STOP, each made with the
 * instruction at raw_syscall_insn (rawsys.h), in this order:
 *   getpid, pipe2(fds, 0), write(fds[1], "memtap", 6), read(fds[0], buf, 6),
 *   openat(AT_FDCWD, "/proc/self/stat", O_RDONLY), close(that fd),
 *   openat(AT_FDCWD, "/memtap-missing", O_RDONLY) (fails: -ENOENT), clock_gettime(CLOCK_MONOTONIC, &ts),
 *   nanosleep({0, 0}, NULL), close(fds[0]), close(fds[1]).
 * The process is pinned to CPU 0 first, so the whole sequence, kernel side included, runs on one vCPU.
 * Prints the results: `syscalls: pipe2=0 fds=3,4 write=6 read=6 data=memtap openat=5 close=0 missing=-2
 * clock_gettime=0 nanosleep=0 close=0,0` (file descriptors 0-2 are the console, opened by init).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>

#include "memtap.h"
#include "rawsys.h"

int main(void)
{
    int fds[2] = {-1, -1};
    char buf[8] = {0};
    struct timespec ts = {0, 0}, zero = {0, 0};
    long pid, pipe_r, write_r, read_r, open_r, close_r, missing_r, clock_r, sleep_r, close0_r, close1_r;
    cpu_set_t cpu0;

    CPU_ZERO(&cpu0);
    CPU_SET(0, &cpu0);
    if (sched_setaffinity(0, sizeof cpu0, &cpu0) != 0) {
        perror("syscalls: sched_setaffinity");
        return 2;
    }

    MEMTAP_START();
    pid = raw_syscall(SYS_getpid, 0, 0, 0, 0, 0, 0);
    pipe_r = raw_syscall(SYS_pipe2, (long)fds, 0, 0, 0, 0, 0);
    write_r = raw_syscall(SYS_write, fds[1], (long)"memtap", 6, 0, 0, 0);
    read_r = raw_syscall(SYS_read, fds[0], (long)buf, 6, 0, 0, 0);
    open_r = raw_syscall(SYS_openat, AT_FDCWD, (long)"/proc/self/stat", O_RDONLY, 0, 0, 0);
    close_r = raw_syscall(SYS_close, open_r, 0, 0, 0, 0, 0);
    missing_r = raw_syscall(SYS_openat, AT_FDCWD, (long)"/memtap-missing", O_RDONLY, 0, 0, 0);
    clock_r = raw_syscall(SYS_clock_gettime, CLOCK_MONOTONIC, (long)&ts, 0, 0, 0, 0);
    sleep_r = raw_syscall(SYS_nanosleep, (long)&zero, 0, 0, 0, 0, 0);
    close0_r = raw_syscall(SYS_close, fds[0], 0, 0, 0, 0, 0);
    close1_r = raw_syscall(SYS_close, fds[1], 0, 0, 0, 0, 0);
    MEMTAP_STOP();

    printf("syscalls: pipe2=%ld fds=%d,%d write=%ld read=%ld data=%s openat=%ld close=%ld missing=%ld "
           "clock_gettime=%ld nanosleep=%ld close=%ld,%ld\n", pipe_r, fds[0], fds[1], write_r, read_r, buf,
           open_r, close_r, missing_r, clock_r, sleep_r, close0_r, close1_r);
    return pid > 0 && pipe_r == 0 && write_r == 6 && read_r == 6 && strcmp(buf, "memtap") == 0 && open_r >= 0
        && close_r == 0 && missing_r == -2 && clock_r == 0 && sleep_r == 0 && close0_r == 0 && close1_r == 0
        ? 0 : 1;
}
