/*
 * work.c - worker threads for requests that block: waiting for a
 * projection to reach min_position, pages of history and events, answers
 * replayed from the store, readiness. They run here so that the HTTP
 * threads never block: a slow request holds a worker (and a pooled
 * connection), never the other connections of its HTTP thread.
 */
#include <pthread.h>
#include <stdlib.h>

#include "internal.h"

struct evsq__workers {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	evsq__job *head, *tail;
	bool stop;
	int n;
	pthread_t threads[];
};

static void *worker(void *arg)
{
	evsq__workers *w = arg;

	for (;;) {
		evsq__job *job;

		pthread_mutex_lock(&w->mu);
		while (!w->head && !w->stop)
			pthread_cond_wait(&w->cv, &w->mu);
		job = w->head;
		if (!job) { /* stopping, and nothing left to run */
			pthread_mutex_unlock(&w->mu);
			return NULL;
		}
		w->head = job->next;
		if (!w->head)
			w->tail = NULL;
		pthread_mutex_unlock(&w->mu);
		job->run(job);
		job->done(job);
	}
}

int evsq__workers_start(int threads, evsq__workers **out)
{
	evsq__workers *w = calloc(1, sizeof *w + (size_t)threads * sizeof(pthread_t));
	int i;

	if (!w)
		return EVSQ_NOMEM;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	for (i = 0; i < threads; i++) {
		if (pthread_create(&w->threads[i], NULL, worker, w))
			break;
		w->n++;
	}
	if (w->n < threads) {
		evsq__workers_free(w);
		return EVSQ_NOMEM;
	}
	*out = w;
	return EVSQ_OK;
}

void evsq__workers_submit(evsq__workers *w, evsq__job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&w->mu);
	if (w->stop) {
		pthread_mutex_unlock(&w->mu);
		job->status = 503;
		evsq__error(&job->body, "unavailable", "the service is stopping");
		job->done(job);
		return;
	}
	if (w->tail)
		w->tail->next = job;
	else
		w->head = job;
	w->tail = job;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

void evsq__workers_stop(evsq__workers *w)
{
	int i;

	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	for (i = 0; i < w->n; i++)
		pthread_join(w->threads[i], NULL);
	w->n = 0;
}

void evsq__workers_free(evsq__workers *w)
{
	if (!w)
		return;
	evsq__workers_stop(w);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}
