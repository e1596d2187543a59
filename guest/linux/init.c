/*
 * memtap's /init for the Linux test guests (static). Mounts /proc, /sys and /dev, then reads the kernel command
 * line (/proc/cmdline; the kernel keeps dotted parameters from init's arguments):
 *
 *   memtap.run=NAME     run /bin/NAME (argv[1..] from memtap.args=A,B,...), print
 *                       `memtap-init: NAME exited with status N` (or `... killed by signal S`), power off
 *   (no memtap.run)     an interactive busybox shell on the console, when /bin/busybox is there; power off
 *                       when it exits
 *
 * Powering off (reboot(RB_POWER_OFF): ACPI on x86, PSCI on arm64, SBI on riscv64) makes QEMU exit with status 0
 * whatever the program did: its status is the console line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_ARGS 16

static void mount_fs(const char *type, const char *dir)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        fprintf(stderr, "memtap-init: mkdir %s: %s\n", dir, strerror(errno));
    if (mount(type, dir, type, 0, NULL) != 0)
        fprintf(stderr, "memtap-init: mount %s on %s: %s\n", type, dir, strerror(errno));
}

/* The value of kernel parameter `key=` in cmdline, copied to out (empty if absent). */
static void parameter(const char *cmdline, const char *key, char *out, size_t size)
{
    size_t len = strlen(key);
    out[0] = 0;
    for (const char *p = cmdline; (p = strstr(p, key)) != NULL; p += len) {
        if ((p == cmdline || p[-1] == ' ') && p[len] == '=') {
            size_t n = strcspn(p + len + 1, " \n");
            if (n >= size)
                n = size - 1;
            memcpy(out, p + len + 1, n);
            out[n] = 0;
            return;
        }
    }
}

static void power_off(void)
{
    fflush(NULL);
    sync();
    reboot(RB_POWER_OFF);
    fprintf(stderr, "memtap-init: power off failed: %s\n", strerror(errno));
    for (;;)
        pause();
}

/* Runs argv[0] in a child (a session of its own when shell is set) and reports how `name` ended. */
static void run(const char *name, char **argv, int shell)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (shell)
            setsid();
        execv(argv[0], argv);
        fprintf(stderr, "memtap-init: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(status))
        printf("memtap-init: %s exited with status %d\n", name, WEXITSTATUS(status));
    else
        printf("memtap-init: %s killed by signal %d\n", name, WTERMSIG(status));
}

int main(void)
{
    static char cmdline[4096], program[256], args[1024], path[300];
    char *argv[MAX_ARGS + 2];
    int argc = 0;

    mount_fs("proc", "/proc");
    mount_fs("sysfs", "/sys");
    mount_fs("devtmpfs", "/dev");
    mkdir("/tmp", 01777);
    setenv("PATH", "/bin", 1);

    int fd = open("/proc/cmdline", O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, cmdline, sizeof cmdline - 1) : -1;
    cmdline[n > 0 ? n : 0] = 0;
    if (fd >= 0)
        close(fd);
    parameter(cmdline, "memtap.run", program, sizeof program);
    parameter(cmdline, "memtap.args", args, sizeof args);

    if (program[0]) {
        snprintf(path, sizeof path, "/bin/%s", program);
        argv[argc++] = path;
        for (char *a = strtok(args, ","); a && argc <= MAX_ARGS; a = strtok(NULL, ","))
            argv[argc++] = a;
        argv[argc] = NULL;
        printf("memtap-init: running %s\n", program);
        fflush(stdout);
        run(program, argv, 0);
    } else if (access("/bin/busybox", X_OK) == 0) {
        char *install[] = {"/bin/busybox", "--install", "-s", "/bin", NULL};
        char *shell[] = {"/bin/busybox", "cttyhack", "/bin/sh", "-l", NULL};
        run("busybox --install", install, 0);
        printf("memtap-init: busybox shell; the programs are in /bin; `exit` powers off\n");
        fflush(stdout);
        run("sh", shell, 1);
    } else {
        printf("memtap-init: no memtap.run=PROGRAM on the kernel command line and no /bin/busybox\n");
    }
    power_off();
    return 0;
}
