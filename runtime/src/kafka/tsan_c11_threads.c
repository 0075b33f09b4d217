/* ThreadSanitizer support for librdkafka's C11 threads (built into the tsan preset only; empty otherwise).
 *
 * Debian's librdkafka creates its threads with C11 thrd_create and locks with mtx_lock and cnd_wait. glibc
 * implements those without going through pthread_create or pthread_mutex_lock, so ThreadSanitizer, which
 * intercepts only the pthread functions, never learns of librdkafka's threads: the first allocation on one of
 * them crashes inside TSan's allocator (GCC 12 and clang 14 alike), and the hand-offs through librdkafka's
 * queues (a delivery report, a rebalance callback) would look like races. Defining the C11 functions here, in
 * the executable, interposes glibc's for librdkafka (runtime/CMakeLists.txt pulls this object in and exports
 * the symbols), and forwarding them to pthreads lets TSan see every thread and every lock. glibc's thrd_t,
 * mtx_t and cnd_t are pthread_t, pthread_mutex_t and pthread_cond_t in another name (nptl/thrd_create.c,
 * sysdeps/nptl/threads.h), so the casts below are how glibc itself implements them. */
#if defined(__SANITIZE_THREAD__)
#define MEPHISTO_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MEPHISTO_TSAN 1
#endif
#endif

#ifdef MEPHISTO_TSAN
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>
#include <time.h>

struct thread_start {
    thrd_start_t fn;
    void* arg;
};

static void* run_c11_thread(void* p) {
    struct thread_start start = *(struct thread_start*)p;
    free(p);
    return (void*)(intptr_t)start.fn(start.arg);
}

static int c11_status(int rc) {
    switch (rc) {
    case 0: return thrd_success;
    case EBUSY: return thrd_busy;
    case ETIMEDOUT: return thrd_timedout;
    case ENOMEM: return thrd_nomem;
    default: return thrd_error;
    }
}

int thrd_create(thrd_t* thr, thrd_start_t fn, void* arg) {
    struct thread_start* start = malloc(sizeof *start);
    if (!start) return thrd_nomem;
    start->fn = fn;
    start->arg = arg;
    int rc = pthread_create((pthread_t*)thr, NULL, run_c11_thread, start);
    if (rc != 0) free(start);
    return c11_status(rc);
}

int thrd_join(thrd_t thr, int* res) {
    void* out = NULL;
    int rc = pthread_join((pthread_t)thr, &out);
    if (rc == 0 && res) *res = (int)(intptr_t)out;
    return c11_status(rc);
}

int thrd_detach(thrd_t thr) { return c11_status(pthread_detach((pthread_t)thr)); }

int mtx_init(mtx_t* m, int type) {
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    if (type & mtx_recursive) pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    int rc = pthread_mutex_init((pthread_mutex_t*)m, &attr);
    pthread_mutexattr_destroy(&attr);
    return c11_status(rc);
}
int mtx_lock(mtx_t* m) { return c11_status(pthread_mutex_lock((pthread_mutex_t*)m)); }
int mtx_trylock(mtx_t* m) { return c11_status(pthread_mutex_trylock((pthread_mutex_t*)m)); }
int mtx_timedlock(mtx_t* restrict m, const struct timespec* restrict until) {
    return c11_status(pthread_mutex_timedlock((pthread_mutex_t*)m, until));
}
int mtx_unlock(mtx_t* m) { return c11_status(pthread_mutex_unlock((pthread_mutex_t*)m)); }
void mtx_destroy(mtx_t* m) { pthread_mutex_destroy((pthread_mutex_t*)m); }

int cnd_init(cnd_t* c) { return c11_status(pthread_cond_init((pthread_cond_t*)c, NULL)); }
int cnd_signal(cnd_t* c) { return c11_status(pthread_cond_signal((pthread_cond_t*)c)); }
int cnd_broadcast(cnd_t* c) { return c11_status(pthread_cond_broadcast((pthread_cond_t*)c)); }
int cnd_wait(cnd_t* c, mtx_t* m) { return c11_status(pthread_cond_wait((pthread_cond_t*)c, (pthread_mutex_t*)m)); }
int cnd_timedwait(cnd_t* restrict c, mtx_t* restrict m, const struct timespec* restrict until) {
    return c11_status(pthread_cond_timedwait((pthread_cond_t*)c, (pthread_mutex_t*)m, until));
}
void cnd_destroy(cnd_t* c) { pthread_cond_destroy((pthread_cond_t*)c); }
#endif
