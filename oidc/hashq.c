/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bounded hash queue: a FIFO of caller-owned jobs under one mutex, N threads popping it.
 * Each job carries its own state and the caller waits on the queue's `done` condition; jobs
 * are few (tens) and last milliseconds to a second, so one broadcast per job is cheap.
 */
#include "hashq.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE };

struct job {
    oidc_hashq_job_cb fn;
    void *cbdata;
    enum job_state state;
    struct job *next;
};

struct oidc_hashq {
    pthread_mutex_t lock;
    pthread_cond_t work; /* a job was queued, or stop */
    pthread_cond_t done; /* a job finished */
    struct job *head, *tail;
    unsigned pending; /* queued + running */
    unsigned max_pending;
    bool stop;
    unsigned nthreads;
    pthread_t *threads;
};

static void *hash_thread(void *arg)
{
    struct oidc_hashq *q = arg;

    pthread_mutex_lock(&q->lock);
    for (;;) {
        while (!q->head && !q->stop)
            pthread_cond_wait(&q->work, &q->lock);
        if (!q->head && q->stop)
            break;
        struct job *j = q->head;
        q->head = j->next;
        if (!q->head)
            q->tail = NULL;
        j->state = JOB_RUNNING;
        pthread_mutex_unlock(&q->lock);
        j->fn(j->cbdata);
        pthread_mutex_lock(&q->lock);
        j->state = JOB_DONE;
        q->pending--;
        pthread_cond_broadcast(&q->done);
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

int oidc_hashq_new(unsigned workers, unsigned max_pending, struct oidc_hashq **ret, struct err *e)
{
    struct oidc_hashq *q = calloc(1, sizeof *q);
    if (!q)
        return err_set(e, -E_NOMEM, "out of memory");
    q->nthreads = workers ? workers : 2;
    q->max_pending = max_pending ? max_pending : 64;
    q->threads = calloc(q->nthreads, sizeof *q->threads);
    if (!q->threads) {
        free(q);
        return err_set(e, -E_NOMEM, "out of memory");
    }
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->work, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->done, &ca);
    pthread_condattr_destroy(&ca);
    for (unsigned i = 0; i < q->nthreads; i++)
        if (pthread_create(&q->threads[i], NULL, hash_thread, q) != 0) {
            q->nthreads = i;
            oidc_hashq_free(q);
            return err_set(e, -E_INTERNAL, "cannot start hash threads");
        }
    *ret = q;
    return 0;
}

void oidc_hashq_free(struct oidc_hashq *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->lock);
    q->stop = true;
    pthread_cond_broadcast(&q->work);
    pthread_mutex_unlock(&q->lock);
    for (unsigned i = 0; i < q->nthreads; i++)
        pthread_join(q->threads[i], NULL);
    pthread_cond_destroy(&q->work);
    pthread_cond_destroy(&q->done);
    pthread_mutex_destroy(&q->lock);
    free(q->threads);
    free(q);
}

/* Removes @j from the FIFO (it is queued). Caller holds the lock. */
static void withdraw(struct oidc_hashq *q, struct job *j)
{
    struct job *prev = NULL;
    for (struct job *c = q->head; c; prev = c, c = c->next)
        if (c == j) {
            if (prev)
                prev->next = c->next;
            else
                q->head = c->next;
            if (q->tail == c)
                q->tail = prev;
            q->pending--;
            return;
        }
}

int oidc_hashq_run(struct oidc_hashq *q, oidc_hashq_job_cb fn, void *cbdata, int timeout_ms,
                   struct err *e)
{
    struct job j = {.fn = fn, .cbdata = cbdata, .state = JOB_QUEUED};
    struct timespec deadline;

    if (timeout_ms > 0) {
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&q->lock);
    if (q->stop || q->pending >= q->max_pending) {
        pthread_mutex_unlock(&q->lock);
        return err_set(e, -E_UNAVAILABLE, "hash queue full");
    }
    q->pending++;
    if (q->tail)
        q->tail->next = &j;
    else
        q->head = &j;
    q->tail = &j;
    pthread_cond_signal(&q->work);
    while (j.state != JOB_DONE) {
        if (timeout_ms > 0 && j.state == JOB_QUEUED) {
            int r = pthread_cond_timedwait(&q->done, &q->lock, &deadline);
            if (r == ETIMEDOUT && j.state == JOB_QUEUED) {
                withdraw(q, &j);
                pthread_mutex_unlock(&q->lock);
                return err_set(e, -E_UNAVAILABLE, "hash queue wait timed out");
            }
        } else {
            pthread_cond_wait(&q->done, &q->lock);
        }
    }
    pthread_mutex_unlock(&q->lock);
    return 0;
}

unsigned oidc_hashq_pending(struct oidc_hashq *q)
{
    pthread_mutex_lock(&q->lock);
    unsigned n = q->pending;
    pthread_mutex_unlock(&q->lock);
    return n;
}

unsigned oidc_hashq_capacity(const struct oidc_hashq *q)
{
    return q->max_pending;
}
