/*
 * What the C load generators under bench/ share (included by bench/stun/load.c and
 * bench/turn/load.c): big-endian fields, one sendmmsg/recvmmsg entry, the clock, and CPU
 * accounting: the server's user and system CPU from /proc/PID/stat, each core's busy share from
 * /proc/stat, and the generator's own CPU, sampled at the start and the end of the measured span
 * (the difference over the span's seconds is cores' worth).
 */
#ifndef NATPUNCH_BENCH_LOAD_H
#define NATPUNCH_BENCH_LOAD_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sendmmsg, recvmmsg */
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void put32(uint8_t *p, uint32_t v) {
  p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
}

static uint32_t get32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Entry `m` of a sendmmsg/recvmmsg vector: one buffer, and an address (`name` may be NULL). */
static void mmsg_entry(struct mmsghdr *m, struct iovec *iov, void *base, size_t len, void *name, socklen_t name_len) {
  iov->iov_base = base;
  iov->iov_len = len;
  memset(&m->msg_hdr, 0, sizeof m->msg_hdr);
  m->msg_hdr.msg_iov = iov;
  m->msg_hdr.msg_iovlen = 1;
  m->msg_hdr.msg_name = name;
  m->msg_hdr.msg_namelen = name_len;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CPU seconds in user and system mode of process `pid`, all threads, from /proc/PID/stat. */
static int process_cpu(long pid, double *user, double *sys) {
  *user = *sys = 0;
  if (pid <= 0) return 0;
  char path[64], buf[2048];
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')'); /* the command name may contain spaces */
  if (!p) return 0;
  unsigned long utime = 0, stime = 0;
  /* After ")": state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15) */
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2) return 0;
  *user = (double)utime / (double)sysconf(_SC_CLK_TCK);
  *sys = (double)stime / (double)sysconf(_SC_CLK_TCK);
  return 1;
}

/* Busy and total jiffies of cpu `core` from /proc/stat. */
static void core_times(int core, double *busy, double *total) {
  char line[512], name[16];
  snprintf(name, sizeof name, "cpu%d ", core);
  *busy = *total = 0;
  FILE *f = fopen("/proc/stat", "r");
  if (!f) return;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, name, strlen(name)) != 0) continue;
    unsigned long long v[8] = {0};
    sscanf(line + strlen(name), "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
    for (int i = 0; i < 8; i++) *total += (double)v[i];
    *busy = *total - (double)v[3] - (double)v[4]; /* minus idle and iowait */
    break;
  }
  fclose(f);
}

static double self_cpu(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* The options every generator takes: how long to load before and while measuring, and whom to measure. */
struct load_timing {
  long warmup_ms, duration_ms, timeout_ms, server_pid;
};

/* Takes option `k` with value `v` if it is one of load_timing's; returns 0 for any other. */
static int timing_option(const char *k, const char *v, struct load_timing *t) {
  if (!strcmp(k, "--warmup-ms")) t->warmup_ms = atol(v);
  else if (!strcmp(k, "--duration-ms")) t->duration_ms = atol(v);
  else if (!strcmp(k, "--timeout-ms")) t->timeout_ms = atol(v);
  else if (!strcmp(k, "--server-pid")) t->server_pid = atol(v);
  else return 0;
  return t->duration_ms >= 1 && t->warmup_ms >= 0 && t->timeout_ms >= 1 ? 1 : -1;
}

/* One sample of everything above, taken when the measured span starts and when it ends. */
struct cpu_mark {
  double self, server_user, server_sys, busy[2], total[2];
  int server_known;
};

static void cpu_mark(struct cpu_mark *m, long server_pid) {
  m->self = self_cpu();
  m->server_known = process_cpu(server_pid, &m->server_user, &m->server_sys);
  for (int c = 0; c < 2; c++) core_times(c, &m->busy[c], &m->total[c]);
}

/*
 * The span from `a` to `b` as JSON members (no braces): loadCpu, serverUser, serverSys (-1 when
 * the server's /proc entry was unreadable), core0Busy, core1Busy.
 */
static void print_cpu_span(FILE *out, const struct cpu_mark *a, const struct cpu_mark *b, double seconds) {
  const int known = a->server_known && b->server_known;
  fprintf(out, "\"loadCpu\":%.3f,\"serverUser\":%.3f,\"serverSys\":%.3f,\"core0Busy\":%.3f,\"core1Busy\":%.3f",
          (b->self - a->self) / seconds,
          known ? (b->server_user - a->server_user) / seconds : -1.0,
          known ? (b->server_sys - a->server_sys) / seconds : -1.0,
          b->total[0] > a->total[0] ? (b->busy[0] - a->busy[0]) / (b->total[0] - a->total[0]) : -1.0,
          b->total[1] > a->total[1] ? (b->busy[1] - a->busy[1]) / (b->total[1] - a->total[1]) : -1.0);
}

#endif
