#include "meta.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

const char *uf_effective_purpose(struct uf_mount *m, const struct uf_node *n)
{
	if (n->x_purpose)
		return n->x_purpose;
	/* a new version of a remote file keeps the file's purpose */
	if (n->kind == UF_FILE && n->remote && n->purpose[0])
		return n->purpose;
	for (const struct uf_node *p = n->parent; p; p = p->parent)
		if (p->x_purpose)
			return p->x_purpose;
	return m->cfg.purpose;
}

static const struct {
	const char *ext, *mime;
} mimes[] = {
    {"jsonl", "application/jsonl"},
    {"json", "application/json"},
    {"txt", "text/plain"},
    {"csv", "text/csv"},
    {"tsv", "text/tab-separated-values"},
    {"md", "text/markdown"},
    {"html", "text/html"},
    {"htm", "text/html"},
    {"xml", "application/xml"},
    {"pdf", "application/pdf"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"py", "text/x-python"},
    {"c", "text/x-c"},
    {"js", "text/javascript"},
    {"ts", "application/typescript"},
    {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
    {"pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
    {"zip", "application/zip"},
    {"tar", "application/x-tar"},
    {"mp3", "audio/mpeg"},
    {"wav", "audio/wav"},
};

const char *uf_effective_mime(const struct uf_node *n, char *buf, size_t len)
{
	for (const struct uf_node *p = n; p; p = p->parent)
		if (p->x_mime) {
			snprintf(buf, len, "%s", p->x_mime);
			return buf;
		}
	return uf_mime_of_name(n->name, buf, len);
}

const char *uf_mime_of_name(const char *name, char *buf, size_t len)
{
	const char *slash = strrchr(name, '/');
	if (slash)
		name = slash + 1;
	const char *dot = strrchr(name, '.');
	const char *mime = "application/octet-stream";
	for (size_t i = 0; dot && dot != name && i < sizeof mimes / sizeof mimes[0]; i++)
		if (strcasecmp(dot + 1, mimes[i].ext) == 0)
			mime = mimes[i].mime;
	snprintf(buf, len, "%s", mime);
	return buf;
}
