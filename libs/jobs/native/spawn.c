/*
 * coordbus_spawn: posix_spawn(3) for the job spawner helper (libs/jobs/src/exec/spawner.ts).
 *
 * Why: Node's child_process.spawn() forks (libuv uses fork(2) on Linux), so every job copies the
 * forking process's page tables, and the parent then takes a copy-on-write fault for each page it
 * touches until the child has exec'd. glibc's and musl's posix_spawn() use clone(CLONE_VM |
 * CLONE_VFORK) instead: no page tables are copied and nothing is faulted in. Measured on the CI VM
 * (docs/benchmarks.md, "posix_spawn in the helper"): a quarter of the parent's CPU per spawn, and
 * less for the child too.
 *
 * What it does is what the helper asked of child_process.spawn before: a new session (so the job
 * leads its own process group), a working directory, the job's environment and nothing else,
 * stdin from a pipe or /dev/null, stdout and stderr into pipes, every signal at its default
 * disposition and none blocked (Node ignores SIGPIPE; a job must not inherit that). Reaping is
 * waitpid() on the pids the caller knows, so children started elsewhere are left to their owner.
 *
 * Exports (Node-API, no V8 or Node version ties):
 *   spawn(file: string, argv: string[], envp: string[], cwd: string, pipeStdin: boolean)
 *     -> [pid, stdinFd | -1, stdoutFd, stderrFd]  the parent's ends, close-on-exec
 *     -> errno (number)                          it could not start; no process is left behind
 *   reap(pid: number) -> null (still running) | [exitCode | null, signal number | null]
 *
 * `file` is used as given (a path: the caller resolves it against the job's own PATH).
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
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

/* posix_spawn with the pipes and attributes above; 0 or an errno. */
static int start(const char *file, char *const argv[], char *const envp[], const char *cwd,
                 int pipe_stdin, pid_t *pid, int in[2], int out[2], int err[2]) {
  if (pipe_stdin && pipe2(in, O_CLOEXEC)) return errno;
  if (pipe2(out, O_CLOEXEC)) return errno;
  if (pipe2(err, O_CLOEXEC)) return errno;

  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  int rc = posix_spawn_file_actions_init(&actions);
  if (rc) return rc;
  rc = posix_spawnattr_init(&attr);
  if (rc) {
    posix_spawn_file_actions_destroy(&actions);
    return rc;
  }
  sigset_t all, none;
  /* Every bit, not sigfillset(): that leaves out the C library's internal signals (glibc's 32 and
   * 33), which its posix_spawn then sets to SIG_IGN for the child, and an exec keeps SIG_IGN. */
  memset(&all, 0xff, sizeof all);
  sigemptyset(&none);
  /* dup2 onto 0-2 clears close-on-exec on the copies; the originals close at the exec. */
  if (pipe_stdin) rc = posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  else rc = posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  if (!rc) rc = posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  if (!rc) rc = posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  if (!rc) rc = posix_spawn_file_actions_addchdir_np(&actions, cwd);
  if (!rc) rc = posix_spawnattr_setsigdefault(&attr, &all);
  if (!rc) rc = posix_spawnattr_setsigmask(&attr, &none);
  if (!rc)
    rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF |
                                             POSIX_SPAWN_SETSIGMASK);
  /* A failed exec is reported here (the child shares our memory until it execs) and reaped. */
  if (!rc) rc = posix_spawn(pid, file, &actions, &attr, argv, envp);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  return rc;
}

static napi_value js_spawn(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value args[5];
  CHECK(env, napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  if (argc < 5) {
    napi_throw_type_error(env, NULL, "coordbus_spawn: spawn(file, argv, envp, cwd, pipeStdin)");
    return NULL;
  }
  bool pipe_stdin;
  if (napi_get_value_bool(env, args[4], &pipe_stdin) != napi_ok) {
    napi_throw_type_error(env, NULL, "coordbus_spawn: pipeStdin must be a boolean");
    return NULL;
  }
  char *file = NULL, *cwd = NULL, **argv = NULL, **envp = NULL;
  napi_value result = NULL;
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  pid_t pid = -1;
  if (!(file = to_cstring(env, args[0])) || !(argv = to_cstrings(env, args[1])) ||
      !(envp = to_cstrings(env, args[2])) || !(cwd = to_cstring(env, args[3])))
    goto done;

  int rc = start(file, argv, envp, cwd, pipe_stdin, &pid, in, out, err);
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
  int values[4] = {pid, in[1], out[0], err[0]};
  if (napi_create_array_with_length(env, 4, &result) != napi_ok) goto done;
  for (int i = 0; i < 4; i++) {
    napi_value v;
    napi_create_int32(env, values[i], &v);
    napi_set_element(env, result, i, v);
  }

done:
  free(file);
  free(cwd);
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
  if (r <= 0) {
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

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "spawn", NAPI_AUTO_LENGTH, js_spawn, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "spawn", fn) != napi_ok ||
      napi_create_function(env, "reap", NAPI_AUTO_LENGTH, js_reap, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "reap", fn) != napi_ok)
    return NULL;
  return exports;
}
