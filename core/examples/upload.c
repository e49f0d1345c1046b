/* The seed's usage example (openai-python examples/uploads.py), in C with libuploadfs:
 * upload a file in parts and print the upload and the file it became.
 *
 *   OPENAI_BASE_URL=http://127.0.0.1:8080/v1 ./upload FILE [PURPOSE [PART_SIZE]]
 */
#include <uploadfs.h>

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 4) {
		fprintf(stderr, "usage: %s FILE [PURPOSE [PART_SIZE]]\n", argv[0]);
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
	opts.mime_type = "txt"; /* as in the seed's example: the server is lenient */
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
