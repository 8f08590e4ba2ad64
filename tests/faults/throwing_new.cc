// An LD_PRELOAD library for tests: makes `operator new` throw std::bad_alloc inside collectd's
// read callbacks, one allocation at a time, so that tests can check that no exception ever
// reaches the daemon and that a read which died half-way leaves nothing behind that spoils the
// next one (tests/integration/test_faults.py sets it up). The plugin under test is the shipped
// tcpstates.so, unchanged: its allocations reach this operator new through the dynamic linker,
// as they reach libstdc++'s (or, in a sanitizer build, the sanitizer's) without it.
//
// Only collectd's read threads (named "reader#N", and the threads a read starts, which inherit
// the name) are faulted: config, init and shutdown run on the main thread. A read begins with
// the first allocation on a read thread and ends when the thread that began it waits on a
// condition variable: collectd's read threads wait there between two reads, the plugin never
// does. Reads are numbered from 1.
//
//   TCPSTATES_FAULT_NEW_SWEEP=K   reads 1 to 3 run clean; read 3's allocation count A is the
//                                 length of a read. Then reads 4, 6, ..., 2K+2 each throw at one
//                                 allocation, at positions spread evenly over 1..A (the first
//                                 and the last included; every one when K >= A); reads 5, 7, ...
//                                 run clean.
//   TCPSTATES_FAULT_NEW_LOG=PATH  appends "read R allocations N" when read R ends, "throw R P
//                                 OBJECT+0xOFFSET" (who asked for the allocation) at each throw,
//                                 and "miss R P" when read R ended before its allocation P.
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include <cstddef>
#include <new>

namespace {

long sweep = 0;  // K; 0: never throw
const char* log_path = nullptr;

pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
bool in_read = false;
pthread_t read_thread;  // the thread that began the read in progress
long read_number = 0;   // the read in progress, or the last one
long allocations = 0;   // allocations of that read so far
long read_length = 0;   // A, from read 3
long throw_at = 0;      // the allocation of this read that throws (0: none)

void Log(const char* format, ...) __attribute__((format(printf, 1, 2)));
void Log(const char* format, ...) {
  if (log_path == nullptr) return;
  FILE* log = fopen(log_path, "ae");
  if (log == nullptr) return;
  va_list args;
  va_start(args, format);
  vfprintf(log, format, args);
  va_end(args);
  fputc('\n', log);
  fclose(log);
}

__attribute__((constructor)) void LoadConfig() {
  if (const char* value = getenv("TCPSTATES_FAULT_NEW_SWEEP")) sweep = atol(value);
  log_path = getenv("TCPSTATES_FAULT_NEW_LOG");
}

// collectd names its read threads before they take their first read.
bool OnReadThread() {
  static thread_local bool reader = false;
  if (!reader) {
    char name[16] = {};
    prctl(PR_GET_NAME, name);
    reader = strncmp(name, "reader#", 7) == 0;
  }
  return reader;
}

// Where a read of the sweep throws (0: nowhere).
long ThrowPosition(long read) {
  const long k = (read - 4) / 2;  // 0 .. K-1 for reads 4, 6, ...
  const long positions = sweep < read_length ? sweep : read_length;
  if (read < 4 || read % 2 != 0 || k >= positions) return 0;
  if (positions == 1) return 1;
  return 1 + k * (read_length - 1) / (positions - 1);
}

// Counts one allocation of a read; true when it is the one to throw.
bool CountAllocation(const void* caller) {
  pthread_mutex_lock(&mutex);
  if (!in_read) {
    in_read = true;
    read_thread = pthread_self();
    ++read_number;
    allocations = 0;
    throw_at = ThrowPosition(read_number);
  }
  const bool fail = ++allocations == throw_at;
  if (fail) {
    Dl_info info = {};
    const char* object = "?";
    unsigned long offset = 0;
    if (dladdr(caller, &info) != 0 && info.dli_fname != nullptr) {
      object = strrchr(info.dli_fname, '/') ? strrchr(info.dli_fname, '/') + 1 : info.dli_fname;
      offset =
          reinterpret_cast<unsigned long>(caller) - reinterpret_cast<unsigned long>(info.dli_fbase);
    }
    Log("throw %ld %ld %s+0x%lx", read_number, allocations, object, offset);
  }
  pthread_mutex_unlock(&mutex);
  return fail;
}

// A read thread about to wait: the read it began, if any, is over.
void EndRead() {
  if (!OnReadThread()) return;
  pthread_mutex_lock(&mutex);
  if (in_read && pthread_equal(read_thread, pthread_self())) {
    in_read = false;
    Log("read %ld allocations %ld", read_number, allocations);
    if (throw_at > allocations) Log("miss %ld %ld", read_number, throw_at);
    if (read_number == 3) read_length = allocations;
  }
  pthread_mutex_unlock(&mutex);
}

template <typename F>
F Next(const char* symbol, const char* version = nullptr) {
  void* next = version ? dlvsym(RTLD_NEXT, symbol, version) : dlsym(RTLD_NEXT, symbol);
  if (next == nullptr) {
    fprintf(stderr, "throwing_new: no %s after this library\n", symbol);
    abort();
  }
  return reinterpret_cast<F>(next);
}

using New = void* (*)(size_t);
using AlignedNew = void* (*)(size_t, std::align_val_t);

}  // namespace

// The four throwing forms. The nothrow forms and every delete are left to the next library, which
// this one's allocations come from too.
void* operator new(size_t size) {
  static New next = Next<New>("_Znwm");
  if (OnReadThread() && CountAllocation(__builtin_return_address(0))) throw std::bad_alloc();
  return next(size);
}

void* operator new[](size_t size) {
  static New next = Next<New>("_Znam");
  if (OnReadThread() && CountAllocation(__builtin_return_address(0))) throw std::bad_alloc();
  return next(size);
}

void* operator new(size_t size, std::align_val_t alignment) {
  static AlignedNew next = Next<AlignedNew>("_ZnwmSt11align_val_t");
  if (OnReadThread() && CountAllocation(__builtin_return_address(0))) throw std::bad_alloc();
  return next(size, alignment);
}

void* operator new[](size_t size, std::align_val_t alignment) {
  static AlignedNew next = Next<AlignedNew>("_ZnamSt11align_val_t");
  if (OnReadThread() && CountAllocation(__builtin_return_address(0))) throw std::bad_alloc();
  return next(size, alignment);
}

// collectd's read threads wait on read_cond between reads (GLIBC_2.3.2: the version collectd
// is linked against).
extern "C" int pthread_cond_wait(pthread_cond_t* cond, pthread_mutex_t* lock) {
  using Wait = int (*)(pthread_cond_t*, pthread_mutex_t*);
  static Wait next = Next<Wait>("pthread_cond_wait", "GLIBC_2.3.2");
  EndRead();
  return next(cond, lock);
}

extern "C" int pthread_cond_timedwait(pthread_cond_t* cond, pthread_mutex_t* lock,
                                      const struct timespec* deadline) {
  using TimedWait = int (*)(pthread_cond_t*, pthread_mutex_t*, const struct timespec*);
  static TimedWait next = Next<TimedWait>("pthread_cond_timedwait", "GLIBC_2.3.2");
  EndRead();
  return next(cond, lock, deadline);
}
