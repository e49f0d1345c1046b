/* filecmds: `uploadfs put|ls|rm|get|cancel` — the Uploads and Files APIs as commands, on
 * the library the mount uses (no FUSE): the same environment and key rules, a progress bar
 * on a terminal, JSON with --json, and a put or get that resumes where it was interrupted. */
#ifndef UF_FILECMDS_H
#define UF_FILECMDS_H

#include <stdbool.h>

/* Whether argv[1] names one of these commands. */
bool uf_files_is_command(const char *name);
/* argv[0] is the command's name. Returns the process exit status. */
int uf_files_main(int argc, char **argv);

#endif
