/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A bounded queue for expensive hash checks (bcrypt cost 14 is 0.8 s of one core). A few
 * dedicated threads run the checks; a worker thread hands one in and waits for it. When the
 * queue already holds its maximum, the caller is told at once (-E_UNAVAILABLE: "busy, try
 * again") instead of piling up, so a flood of logins costs at most `workers` cores and can
 * never hold every worker thread hostage: token requests keep being answered.
 */
#ifndef OIDC_HASHQ_H
#define OIDC_HASHQ_H

#include "common/err.h"

struct oidc_hashq;

/** A job: runs on a hash thread with the caller's @cbdata. */
typedef void (*oidc_hashq_job_cb)(void *cbdata);

/**
 * Starts @workers threads (default 2 when 0) serving at most @max_pending jobs waiting or
 * running (default 64 when 0). Returns 0 and *ret, or -E_NOMEM / -E_INTERNAL with @e.
 */
int oidc_hashq_new(unsigned workers, unsigned max_pending, struct oidc_hashq **ret, struct err *e);

/** Stops the threads after the jobs in flight and frees @q (NULL allowed). No new calls. */
void oidc_hashq_free(struct oidc_hashq *q);

/**
 * Runs @fn(@cbdata) on a hash thread and waits for it to finish. Returns 0 once it ran;
 * -E_UNAVAILABLE at once when the queue is full, or when the job waited @timeout_ms (0 = no
 * limit) without being started (it is then withdrawn and never runs). A job that started is
 * always waited for, so @cbdata may live on the caller's stack. Any thread but a hash thread.
 */
int oidc_hashq_run(struct oidc_hashq *q, oidc_hashq_job_cb fn, void *cbdata, int timeout_ms,
                   struct err *e);

/** Jobs waiting or running now (metrics, tests). */
unsigned oidc_hashq_pending(struct oidc_hashq *q);

/** The most jobs waiting or running at once (the max_pending it was created with). */
unsigned oidc_hashq_capacity(const struct oidc_hashq *q);

#endif
