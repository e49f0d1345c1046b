/* The seed's usage example (openai-python examples/uploads.py), in C with libuploadfs:
 * upload a file in parts and print the upload and the file it became.
 *
 *   OPENAI_BASE_URL=http://127.0.0.1:8080/v1 ./upload FILE [PURPOSE [PART_SIZE [MIME_TYPE]]]
 *
 * `uploadfs put` is the full command (resume, stdin, progress, JSON); this stays small.
 */
#include <uploadfs.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The MIME type of a few common extensions; the API wants one that fits the purpose. */
static const char *mime_of(const char *path)
{
	static const char *const map[][2] = {{".jsonl", "application/jsonl"},
					     {".json", "application/json"},
					     {".txt", "text/plain"},
					     {".csv", "text/csv"},
					     {".pdf", "application/pdf"},
					     {".png", "image/png"},
					     {".jpg", "image/jpeg"}};
	const char *dot = strrchr(path, '.');
	for (size_t i = 0; dot && i < sizeof map / sizeof map[0]; i++)
		if (strcmp(dot, map[i][0]) == 0)
			return map[i][1];
	return "application/octet-stream";
}

int main(int argc, char **argv)
{
#define USAGE                                                                                      \
	"usage: %s FILE [PURPOSE [PART_SIZE [MIME_TYPE]]]\n"                                      \
	"Uploads FILE in parts to $OPENAI_BASE_URL with $OPENAI_API_KEY.\n"
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf(USAGE, argv[0]);
		return 0;
	}
	if (argc < 2 || argc > 5 || argv[1][0] == '-') {
		fprintf(stderr, USAGE, argv[0]);
		return 2;
	}
	struct up_error err;
	up_client *client;
	if (up_client_new(NULL, &client, &err) < 0) {
		fprintf(stderr, "upload: %s\n", err.message);
		return 1;
	}
	struct up_file_upload opts = UP_FILE_UPLOAD_INIT;
	opts.path = argv[1];
	opts.mime_type = argc > 4 ? argv[4] : mime_of(argv[1]);
	opts.purpose = argc > 2 ? argv[2] : "batch";
	opts.part_size = argc > 3 ? strtoull(argv[3], NULL, 10) : 0;

	struct up_upload upload;
	int rc = up_upload_file(client, &opts, &upload, &err);
	if (rc < 0) {
		fprintf(stderr, "upload: %s (HTTP %d)\n", err.message, err.status);
		up_client_free(client);
		return 1;
	}
	printf("upload %s %s\n", upload.id, upload.status);
	printf("file %s %llu bytes %s\n", upload.file.id, (unsigned long long)upload.file.bytes,
	       upload.file.filename);
	up_upload_clear(&upload);
	up_client_free(client);
	return 0;
}
