#include "session.h"

#include <errno.h>

#define T(to_, cancel_, rec_) {.to = (to_), .cancel_session = (cancel_), .record = (rec_), .ok = true}

struct cell {
	enum up_sstate to;
	bool cancel_session;
	enum up_record record;
	bool ok;
};

/* [from][event]. An empty cell is a transition that cannot happen: the writer checks the
 * state before it acts, and a step outside the table is a bug it reports (-EINVAL). */
static const struct cell table[UP_S_COUNT][UP_EV_COUNT] = {
    [UP_S_OPEN] =
	{
	    [UP_EV_ANNOUNCED] = T(UP_S_EARLY, false, UP_REC_OPEN),
	    [UP_EV_SEALED] = T(UP_S_SEALED, false, UP_REC_CLOSED),
	    [UP_EV_FAILED] = T(UP_S_FAILED, false, UP_REC_DROP),
	    [UP_EV_CANCELLED] = T(UP_S_CANCELLED, false, UP_REC_DROP),
	},
    [UP_S_EARLY] =
	{
	    [UP_EV_VOIDED] = T(UP_S_OPEN, true, UP_REC_DROP),
	    [UP_EV_SEALED] = T(UP_S_SENDING, false, UP_REC_CLOSED),
	    [UP_EV_FAILED] = T(UP_S_FAILED, true, UP_REC_DROP),
	    [UP_EV_CANCELLED] = T(UP_S_CANCELLED, true, UP_REC_DROP),
	},
    [UP_S_SEALED] =
	{
	    [UP_EV_CREATED] = T(UP_S_SENDING, false, UP_REC_CLOSED),
	    [UP_EV_COMPLETED] = T(UP_S_COMPLETED, false, UP_REC_DROP), /* Files API */
	    [UP_EV_FAILED] = T(UP_S_FAILED, false, UP_REC_DROP),
	    [UP_EV_CANCELLED] = T(UP_S_CANCELLED, false, UP_REC_DROP),
	},
    [UP_S_SENDING] =
	{
	    [UP_EV_VOIDED] = T(UP_S_SEALED, true, UP_REC_CLOSED),
	    [UP_EV_COMPLETED] = T(UP_S_COMPLETED, false, UP_REC_DROP),
	    [UP_EV_FAILED] = T(UP_S_FAILED, true, UP_REC_DROP),
	    [UP_EV_CANCELLED] = T(UP_S_CANCELLED, true, UP_REC_DROP),
	},
    [UP_S_FAILED] =
	{
	    [UP_EV_CANCELLED] = T(UP_S_CANCELLED, false, UP_REC_KEEP),
	},
};

int up_session_step(enum up_sstate from, enum up_sevent ev, struct up_transition *out)
{
	if ((unsigned)from >= UP_S_COUNT || (unsigned)ev >= UP_EV_COUNT || !table[from][ev].ok)
		return -EINVAL;
	const struct cell *c = &table[from][ev];
	*out = (struct up_transition){
	    .to = c->to, .cancel_session = c->cancel_session, .record = c->record};
	return 0;
}

int up_session_restored(bool closed, bool has_session, enum up_sstate *out)
{
	if (!closed)
		return -ESTALE;
	*out = has_session ? UP_S_SENDING : UP_S_SEALED;
	return 0;
}

const char *up_session_state_name(enum up_sstate s)
{
	static const char *const n[UP_S_COUNT] = {"open",      "early",	 "sealed",   "sending",
						  "completed", "failed", "cancelled"};
	return (unsigned)s < UP_S_COUNT ? n[s] : "?";
}

const char *up_session_event_name(enum up_sevent e)
{
	static const char *const n[UP_EV_COUNT] = {"announced", "voided", "sealed",   "created",
						   "completed", "failed", "cancelled"};
	return (unsigned)e < UP_EV_COUNT ? n[e] : "?";
}

bool up_session_writable(enum up_sstate s)
{
	return s == UP_S_OPEN || s == UP_S_EARLY;
}

bool up_session_has_session(enum up_sstate s)
{
	return s == UP_S_EARLY || s == UP_S_SENDING;
}
