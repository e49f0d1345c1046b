/* statuscmd: `uploadfs status [--json] [--watch] MOUNTPOINT` — reads the mount root's
 * user.uploadfs.status and shows each upload in flight or failed: a header, an overall
 * line, and a row per upload that fits the terminal (bar, bytes sent of the total, a rate
 * averaged over a few seconds, ETA); plain lines otherwise; JSON for scripts. */
#ifndef UF_STATUSCMD_H
#define UF_STATUSCMD_H

#include <stddef.h>
#include <stdint.h>

/* argv[0] is "status". Returns the process exit status. */
int uf_status_main(int argc, char **argv);

/* The forms the status screen and the commands' progress bar share: "12.3 MiB", and a
 * time as "M:SS" or "H:MM:SS" ("--:--" when negative or past 99 hours). */
void uf_fmt_bytes(uint64_t b, char *out, size_t len);
void uf_fmt_duration(double s, char *out, size_t len);

#endif
