/*
 * limits.c - connection limits (--max-connections, --max-per-ip) counted
 * across every event loop.
 *
 * Every loop's daemon asks evsq__limits_accept() before it takes a
 * connection, which checks the counts of all loops at once (one mutex);
 * evsq__limits_notify() counts a connection in when it starts and out
 * when it closes. (libmicrohttpd's own limits count per daemon: with
 * several loops and the kernel spreading connections by hash, they would
 * refuse early or let one address in once per loop.) A connection refused
 * here is closed at once, before any byte is read.
 */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

struct evsq__peer {
	struct sockaddr_storage addr;
	unsigned n;
};

static bool same_host(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->sa_family == AF_INET6)
		return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			       &((const struct sockaddr_in6 *)b)->sin6_addr,
			       sizeof(struct in6_addr));
	return false;
}

static struct evsq__peer *find_peer(evsq_server *srv, const struct sockaddr *addr)
{
	size_t i;

	for (i = 0; i < srv->npeers; i++)
		if (same_host((struct sockaddr *)&srv->peers[i].addr, addr))
			return &srv->peers[i];
	return NULL;
}

enum MHD_Result evsq__limits_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	evsq_server *srv = cls;
	struct evsq__peer *p;
	bool ok;

	(void)addrlen;
	pthread_mutex_lock(&srv->lim_mu);
	p = find_peer(srv, addr);
	ok = srv->conns < srv->max_conns && !(srv->max_per_ip && p && p->n >= srv->max_per_ip);
	pthread_mutex_unlock(&srv->lim_mu);
	return ok ? MHD_YES : MHD_NO;
}

/* A connection is counted when libmicrohttpd has set it up (STARTED) and
 * given back when it closes, so a connection that never starts holds no
 * slot. Two loops accepting from the same address in the same instant
 * can both pass evsq__limits_accept(): a limit may be exceeded by at
 * most threads - 1 for that moment. */
void evsq__limits_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
			 enum MHD_ConnectionNotificationCode toe)
{
	static char counted;
	evsq_server *srv = cls;
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	struct evsq__peer *p;

	if (!ci || !ci->client_addr)
		return;
	pthread_mutex_lock(&srv->lim_mu);
	p = find_peer(srv, ci->client_addr);
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		if (!p && srv->npeers == srv->cap_peers) {
			size_t cap = srv->cap_peers ? srv->cap_peers * 2 : 16;
			struct evsq__peer *np = realloc(srv->peers, cap * sizeof *np);

			if (!np)
				goto out; /* not counted: the limit is lenient, never wrong */
			srv->peers = np;
			srv->cap_peers = cap;
		}
		if (!p) {
			socklen_t len = ci->client_addr->sa_family == AF_INET6
						? sizeof(struct sockaddr_in6)
						: sizeof(struct sockaddr_in);

			p = &srv->peers[srv->npeers++];
			memset(p, 0, sizeof *p);
			memcpy(&p->addr, ci->client_addr, len);
		}
		p->n++;
		srv->conns++;
		*socket_context = &counted;
	} else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context == &counted) {
		*socket_context = NULL;
		srv->conns--;
		if (p && --p->n == 0)
			*p = srv->peers[--srv->npeers]; /* forget the address */
	}
out:
	pthread_mutex_unlock(&srv->lim_mu);
}
