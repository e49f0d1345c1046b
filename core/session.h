/* session: the states of one file's upload and every transition between them, as one
 * table with what each transition does to the server session and the journal record.
 * core/writer.c changes its state through up_session_step only. */
#ifndef UP_SESSION_H
#define UP_SESSION_H

#include <stdbool.h>

enum up_sstate {
	UP_S_OPEN,	/* being written; no session on the server */
	UP_S_EARLY,	/* being written; a session exists (its size was announced) */
	UP_S_SEALED,	/* its last writer closed it: bytes, parts and MD5 final; no session */
	UP_S_SENDING,	/* sealed, with a session: the rest of its parts, then complete */
	UP_S_COMPLETED, /* the server has it, verified */
	UP_S_FAILED,	/* an error is latched; no session is left on the server */
	UP_S_CANCELLED, /* removed (rm); no session is left on the server */
	UP_S_COUNT
};

enum up_sevent {
	UP_EV_ANNOUNCED, /* a session was created for the announced size */
	UP_EV_VOIDED,	 /* the session no longer fits (size, name, bytes, expiry) */
	UP_EV_SEALED,	 /* the last writer closed the file */
	UP_EV_CREATED,	 /* finish created the session */
	UP_EV_COMPLETED, /* the server answered complete (or the Files API stored it) */
	UP_EV_FAILED,	 /* an error was latched */
	UP_EV_CANCELLED, /* rm */
	UP_EV_COUNT
};

/* What the journal record becomes after a transition. */
enum up_record {
	UP_REC_KEEP,  /* as it is */
	UP_REC_OPEN,  /* written without MD5: a restart cancels its session */
	UP_REC_CLOSED, /* written with the MD5, fsynced: a restart finishes it */
	UP_REC_DROP,  /* removed */
};

struct up_transition {
	enum up_sstate to;
	bool cancel_session; /* the session held before the step is cancelled on the server */
	enum up_record record;
};

/* The transition for event in state from: 0, or -EINVAL if the table has none. */
int up_session_step(enum up_sstate from, enum up_sevent ev, struct up_transition *out);

/* The state a journal record restores after a crash: a closed file's record is SEALED
 * (no session) or SENDING; -ESTALE for a file that was still being written, whose
 * session a restart cancels. */
int up_session_restored(bool closed, bool has_session, enum up_sstate *out);

const char *up_session_state_name(enum up_sstate s);
const char *up_session_event_name(enum up_sevent e);

/* Whether bytes can still change (OPEN, EARLY), and whether a session exists. */
bool up_session_writable(enum up_sstate s);
bool up_session_has_session(enum up_sstate s);

#endif
