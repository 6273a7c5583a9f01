/*
 * coordbus_spawn: starts a job process for NativeSpawner (libs/jobs/src/exec/native-spawner.ts)
 * without forking the replica.
 *
 * Why: Node's child_process.spawn() forks (libuv uses fork(2) on Linux): every job copies the
 * forking process's page tables, and the parent then takes a copy-on-write fault for each page it
 * touches until the child has exec'd. So a replica used to fork from a small helper process, which
 * cost IPC, /proc reads and cgroup moves of its own, and a `/bin/sh` in front of a job whenever
 * moving the helper did not pay. Here the child is a clone(CLONE_VM | CLONE_VFORK), as glibc's
 * posix_spawn makes it: no page tables copied, the parent waits only until the exec. Unlike
 * posix_spawn, the child can also join the job's cgroup itself before the exec, so the job is born
 * in it with nothing in front of it; it reports what the join took, since after a quiet spell a
 * cgroup move can wait milliseconds for the kernel, and the parent waits with it. The figures are
 * in docs/benchmarks.md ("Jobs without a fork").
 *
 * The child gets what child_process.spawn with `detached` gave it: a new session (it leads its
 * own process group), the working directory, the job's environment and nothing else, stdin from
 * a pipe or /dev/null, stdout and stderr into pipes, every signal at its default disposition and
 * none blocked (Node ignores SIGPIPE: a job must not inherit that). Then its cgroup and niceness.
 * Reaping is waitpid() on the pids the caller knows (children started elsewhere are their owner's),
 * when a thread per child that waits for its exit without reaping it says so.
 *
 * Exports (Node-API: no V8 or Node version ties), Linux only (clone, cgroup v2):
 *   spawn(file, argv, envp, cwd, pipeStdin, cgroupProcs: string | null, nice: number)
 *     -> [pid, stdinFd | -1, stdoutFd, stderrFd, joined 0 | 1, join µs]  our ends are close-on-exec
 *     -> errno (number)  it could not start (exec or chdir failed); nothing is left behind
 *   reap(pid) -> null (running) | [exitCode | null, signal number | null] | errno (not our child)
 *   onExit(listener) -> listener(pid) once each child started after it has exited (to reap it)
 *
 * `file` is used as given: the caller resolves it on the job's own PATH.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <node_api.h>

#define CHECK(env, call)                                                                  \
  do {                                                                                    \
    if ((call) != napi_ok) {                                                              \
      napi_throw_error((env), NULL, "coordbus_spawn: Node-API call failed: " #call);       \
      return NULL;                                                                        \
    }                                                                                     \
  } while (0)

/* A JS string as a malloc'd C string; NULL (with a TypeError thrown) for anything else. */
static char *to_cstring(napi_env env, napi_value value) {
  size_t len;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "coordbus_spawn: expected a string");
    return NULL;
  }
  char *s = malloc(len + 1);
  if (!s) {
    napi_throw_error(env, NULL, "coordbus_spawn: out of memory");
    return NULL;
  }
  napi_get_value_string_utf8(env, value, s, len + 1, &len);
  return s;
}

static void free_strings(char **list) {
  if (!list) return;
  for (char **p = list; *p; p++) free(*p);
  free(list);
}

/* A JS array of strings as a NULL-terminated C array; NULL (with an error thrown) on failure. */
static char **to_cstrings(napi_env env, napi_value array) {
  uint32_t n;
  if (napi_get_array_length(env, array, &n) != napi_ok) {
    napi_throw_type_error(env, NULL, "coordbus_spawn: expected an array of strings");
    return NULL;
  }
  char **out = calloc((size_t)n + 1, sizeof(char *));
  if (!out) {
    napi_throw_error(env, NULL, "coordbus_spawn: out of memory");
    return NULL;
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value item;
    if (napi_get_element(env, array, i, &item) != napi_ok || !(out[i] = to_cstring(env, item))) {
      free_strings(out);
      return NULL;
    }
  }
  return out;
}

static void close_pair(int fds[2]) {
  if (fds[0] >= 0) close(fds[0]);
  if (fds[1] >= 0) close(fds[1]);
  fds[0] = fds[1] = -1;
}

/* What the child needs, prepared by the parent: the child may not allocate (it shares our memory). */
struct child_args {
  const char *file;
  char *const *argv;
  char *const *envp;
  const char *cwd;
  int in_fd; /* its stdin; -1: /dev/null */
  int out_fd;
  int err_fd;
  const char *cgroup_procs; /* joined before the exec; NULL: stays in ours */
  int nice;                 /* raised to this before the exec unless it runs nicer; 0: ours */
  volatile int err;         /* set by a child that could not exec */
  volatile int joined;      /* set by a child that wrote itself into cgroup_procs */
  volatile int64_t join_ns; /* what that write took, less any wait for a CPU meanwhile */
};

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Time this thread has waited on a run queue so far (/proc schedstat), -1 without it. By hand:
 * the child may call nothing that could take a lock. */
static int64_t runqueue_wait_ns(void) {
  char buf[96];
  int fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  const char *p = buf;
  while (*p && *p != ' ') p++; /* past the time on the CPU */
  if (*p++ != ' ' || *p < '0' || *p > '9') return -1;
  int64_t wait = 0;
  while (*p >= '0' && *p <= '9') wait = wait * 10 + (*p++ - '0');
  return wait;
}

/*
 * Runs in the child, on its own stack, in our memory until the exec: system calls only, no
 * allocation, nothing the parent's other threads could be holding.
 */
static int child_main(void *p) {
  struct child_args *a = p;
  /* Every disposition to its default: a handler of ours must never run in here, and SIG_IGN
   * (Node ignores SIGPIPE) would outlive the exec. Every signal is still blocked (the parent's
   * doing), so none can arrive before this is done. */
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, NULL); /* the C library's own: EINVAL */
  if (setsid() < 0) goto fail;
  /* Born in its cgroup: in it before any of the job's own code runs ("0" is the writer). */
  if (a->cgroup_procs) {
    int fd = open(a->cgroup_procs, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
      /* A move can wait for an RCU grace period (milliseconds, after a quiet spell): the caller
       * learns from this when a join in here pays (CgroupMoveWindow). */
      int64_t wait0 = runqueue_wait_ns(), t0 = now_ns();
      if (write(fd, "0", 1) == 1) a->joined = 1;
      int64_t wall = now_ns() - t0, wait1 = runqueue_wait_ns();
      int64_t waited = wait0 >= 0 && wait1 >= wait0 ? wait1 - wait0 : 0;
      a->join_ns = wall - (waited < wall ? waited : wall);
      close(fd);
    }
  }
  if (a->nice > 0) {
    errno = 0;
    int now = getpriority(PRIO_PROCESS, 0);
    if (errno == 0 && a->nice > now) setpriority(PRIO_PROCESS, 0, a->nice);
  }
  if (a->in_fd >= 0) {
    if (dup2(a->in_fd, 0) < 0) goto fail;
  } else {
    int fd = open("/dev/null", O_RDONLY);
    if (fd < 0) goto fail;
    if (fd != 0 && (dup2(fd, 0) < 0 || close(fd) < 0)) goto fail;
  }
  if (dup2(a->out_fd, 1) < 0 || dup2(a->err_fd, 2) < 0) goto fail;
  if (chdir(a->cwd) < 0) goto fail;
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  execve(a->file, a->argv, a->envp);
fail:
  a->err = errno ? errno : EINVAL;
  _exit(127);
}

#define CHILD_STACK (64 * 1024)

/*
 * Exit notices: a small thread per child blocks in waitid(WNOWAIT) until it exits, then tells JS
 * (which reaps it with reap()). Not SIGCHLD: a listener may not be where the signal goes (a test
 * runner's sandboxed `process`), and one signal can stand for several exits.
 */
#define MAX_EXIT_LISTENERS 64
static napi_threadsafe_function exit_listeners[MAX_EXIT_LISTENERS];
static int exit_listener_count;
static pthread_mutex_t exit_listeners_lock = PTHREAD_MUTEX_INITIALIZER;

static void call_exit_listener(napi_env env, napi_value listener, void *context, void *data) {
  (void)context;
  if (!env) return; /* the environment is going away */
  napi_value undefined, pid;
  if (napi_get_undefined(env, &undefined) != napi_ok ||
      napi_create_int32(env, (int32_t)(intptr_t)data, &pid) != napi_ok)
    return;
  napi_call_function(env, undefined, listener, 1, &pid, NULL);
}

static void *wait_for_exit(void *data) {
  siginfo_t info;
  while (waitid(P_PID, (id_t)(intptr_t)data, &info, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
  }
  pthread_mutex_lock(&exit_listeners_lock);
  for (int i = 0; i < exit_listener_count; i++)
    napi_call_threadsafe_function(exit_listeners[i], data, napi_tsfn_nonblocking);
  pthread_mutex_unlock(&exit_listeners_lock);
  return NULL;
}

/* 0, or an errno: then only the caller's poll will see this child's exit. */
static int notify_exit(pid_t pid) {
  pthread_mutex_lock(&exit_listeners_lock);
  int listening = exit_listener_count > 0;
  pthread_mutex_unlock(&exit_listeners_lock);
  if (!listening) return 0;
  pthread_attr_t attr;
  pthread_t thread;
  int rc = pthread_attr_init(&attr);
  if (rc) return rc;
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  rc = pthread_create(&thread, &attr, wait_for_exit, (void *)(intptr_t)pid);
  pthread_attr_destroy(&attr);
  return rc;
}

/* Starts the child with the pipes above; 0 or an errno (a child that could not exec is reaped). */
static int start(struct child_args *a, int pipe_stdin, pid_t *pid, int in[2], int out[2],
                 int err[2]) {
  if (pipe_stdin && pipe2(in, O_CLOEXEC)) return errno;
  if (pipe2(out, O_CLOEXEC)) return errno;
  if (pipe2(err, O_CLOEXEC)) return errno;
  a->in_fd = pipe_stdin ? in[0] : -1;
  a->out_fd = out[1];
  a->err_fd = err[1];
  a->err = 0;
  a->joined = 0;
  a->join_ns = 0;
  char *stack = mmap(NULL, CHILD_STACK, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return errno;
  /* Every signal blocked across the clone, the C library's internal ones too (hence the raw
   * call): none may be handled in the child while it shares our memory. */
  uint64_t all = ~(uint64_t)0, old;
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, sizeof all);
  /* CLONE_VFORK: we wait here until the child has exec'd or exited, so `a` and the stack stay
   * valid for it; CLONE_VM: no page tables copied. The stack grows down from its top. */
  *pid = clone(child_main, stack + CHILD_STACK, CLONE_VM | CLONE_VFORK | SIGCHLD, a);
  int rc = *pid < 0 ? errno : 0;
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, NULL, sizeof old);
  munmap(stack, CHILD_STACK);
  if (!rc && a->err) {
    rc = a->err;
    while (waitpid(*pid, NULL, 0) < 0 && errno == EINTR) {
    }
  }
  return rc;
}

static napi_value js_spawn(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value args[7];
  CHECK(env, napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  if (argc < 7) {
    napi_throw_type_error(env, NULL,
                          "coordbus_spawn: spawn(file, argv, envp, cwd, pipeStdin, cgroupProcs, nice)");
    return NULL;
  }
  bool pipe_stdin;
  int32_t nice;
  napi_valuetype cgroup_type;
  if (napi_get_value_bool(env, args[4], &pipe_stdin) != napi_ok ||
      napi_typeof(env, args[5], &cgroup_type) != napi_ok ||
      napi_get_value_int32(env, args[6], &nice) != napi_ok) {
    napi_throw_type_error(env, NULL,
                          "coordbus_spawn: pipeStdin is a boolean, cgroupProcs a string or null, nice a number");
    return NULL;
  }
  char *file = NULL, *cwd = NULL, *cgroup = NULL, **argv = NULL, **envp = NULL;
  napi_value result = NULL;
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  pid_t pid = -1;
  if (!(file = to_cstring(env, args[0])) || !(argv = to_cstrings(env, args[1])) ||
      !(envp = to_cstrings(env, args[2])) || !(cwd = to_cstring(env, args[3])) ||
      (cgroup_type != napi_null && !(cgroup = to_cstring(env, args[5]))))
    goto done;

  struct child_args a = {.file = file, .argv = argv, .envp = envp, .cwd = cwd,
                         .cgroup_procs = cgroup, .nice = nice};
  int rc = start(&a, pipe_stdin, &pid, in, out, err);
  /* The child's ends: it has its copies (or never started). */
  if (in[0] >= 0) close(in[0]);
  if (out[1] >= 0) close(out[1]);
  if (err[1] >= 0) close(err[1]);
  in[0] = out[1] = err[1] = -1;
  if (rc) {
    close_pair(in);
    close_pair(out);
    close_pair(err);
    napi_create_int32(env, rc, &result);
    goto done;
  }
  notify_exit(pid);
  int values[6] = {pid, in[1], out[0], err[0], a.joined, (int)(a.join_ns / 1000)};
  if (napi_create_array_with_length(env, 6, &result) != napi_ok) goto done;
  for (int i = 0; i < 6; i++) {
    napi_value v;
    napi_create_int32(env, values[i], &v);
    napi_set_element(env, result, i, v);
  }

done:
  free(file);
  free(cwd);
  free(cgroup);
  free_strings(argv);
  free_strings(envp);
  return result;
}

static napi_value js_reap(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg, result;
  int32_t pid;
  CHECK(env, napi_get_cb_info(env, info, &argc, &arg, NULL, NULL));
  if (argc < 1 || napi_get_value_int32(env, arg, &pid) != napi_ok || pid <= 0) {
    napi_throw_type_error(env, NULL, "coordbus_spawn: reap(pid) takes a positive pid");
    return NULL;
  }
  int status;
  pid_t r;
  do r = waitpid(pid, &status, WNOHANG);
  while (r < 0 && errno == EINTR);
  if (r < 0) {
    /* Not (or no longer) our child: reaped by someone else, its status is gone. */
    CHECK(env, napi_create_int32(env, errno, &result));
    return result;
  }
  if (r == 0) {
    CHECK(env, napi_get_null(env, &result));
    return result;
  }
  napi_value code, signo;
  if (WIFEXITED(status)) {
    CHECK(env, napi_create_int32(env, WEXITSTATUS(status), &code));
    CHECK(env, napi_get_null(env, &signo));
  } else {
    CHECK(env, napi_get_null(env, &code));
    CHECK(env, napi_create_int32(env, WIFSIGNALED(status) ? WTERMSIG(status) : 0, &signo));
  }
  CHECK(env, napi_create_array_with_length(env, 2, &result));
  CHECK(env, napi_set_element(env, result, 0, code));
  CHECK(env, napi_set_element(env, result, 1, signo));
  return result;
}

/*
 * onExit(listener): listener(pid) is called once each child started from now on has exited. Every
 * listener hears of every child (a process loads this once, but may hold several module registries
 * or environments, each with its own listener); each reaps only the pids it started.
 */
static napi_value js_on_exit(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value listener, name;
  CHECK(env, napi_get_cb_info(env, info, &argc, &listener, NULL, NULL));
  napi_valuetype type;
  if (argc < 1 || napi_typeof(env, listener, &type) != napi_ok || type != napi_function) {
    napi_throw_type_error(env, NULL, "coordbus_spawn: onExit(listener) takes a function");
    return NULL;
  }
  napi_threadsafe_function tsfn;
  CHECK(env, napi_create_string_utf8(env, "coordbus_spawn exit", NAPI_AUTO_LENGTH, &name));
  CHECK(env, napi_create_threadsafe_function(env, listener, NULL, name, 0, 1, NULL, NULL, NULL,
                                             call_exit_listener, &tsfn));
  /* Running jobs keep the loop alive by their own means (the caller's poll), not this. */
  CHECK(env, napi_unref_threadsafe_function(env, tsfn));
  pthread_mutex_lock(&exit_listeners_lock);
  int added = exit_listener_count < MAX_EXIT_LISTENERS;
  if (added) exit_listeners[exit_listener_count++] = tsfn;
  pthread_mutex_unlock(&exit_listeners_lock);
  if (!added) {
    napi_release_threadsafe_function(tsfn, napi_tsfn_abort);
    napi_throw_error(env, NULL, "coordbus_spawn: too many exit listeners (64)");
  }
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "spawn", NAPI_AUTO_LENGTH, js_spawn, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "spawn", fn) != napi_ok ||
      napi_create_function(env, "reap", NAPI_AUTO_LENGTH, js_reap, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "reap", fn) != napi_ok ||
      napi_create_function(env, "onExit", NAPI_AUTO_LENGTH, js_on_exit, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "onExit", fn) != napi_ok)
    return NULL;
  return exports;
}
