"""The same API with async methods: each blocking library call runs in a worker thread
(asyncio.to_thread), where it holds no GIL, so many calls proceed at once."""

import asyncio

from ._client import Uploads


class AsyncParts:
    def __init__(self, parts):
        self._sync = parts

    async def create(self, upload_id, *, data):
        return await asyncio.to_thread(self._sync.create, upload_id, data=data)


class AsyncFiles:
    def __init__(self, files):
        self._sync = files

    async def list(self, purpose=None, *, order=None, limit=None):
        return await asyncio.to_thread(self._sync.list, purpose, order=order, limit=limit)

    async def retrieve(self, file_id):
        return await asyncio.to_thread(self._sync.retrieve, file_id)

    async def delete(self, file_id):
        return await asyncio.to_thread(self._sync.delete, file_id)

    async def content(self, file_id, path=None):
        return await asyncio.to_thread(self._sync.content, file_id, path)

    async def create(self, *, file, purpose, filename=None):
        return await asyncio.to_thread(self._sync.create, file=file, purpose=purpose,
                                       filename=filename)


class AsyncUploads:
    """Uploads with async methods; the same arguments (see Uploads)."""

    def __init__(self, api_key=None, base_url=None, **kwargs):
        self._sync = Uploads(api_key, base_url, **kwargs)
        self.parts = AsyncParts(self._sync.parts)
        self.files = AsyncFiles(self._sync.files)

    @property
    def base_url(self):
        return self._sync.base_url

    def __repr__(self):
        return f"AsyncUploads(base_url={self.base_url!r})"

    async def close(self):
        await asyncio.to_thread(self._sync.close)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()

    async def create(self, *, bytes, filename, mime_type, purpose):
        return await asyncio.to_thread(self._sync.create, bytes=bytes, filename=filename,
                                       mime_type=mime_type, purpose=purpose)

    async def complete(self, upload_id, *, part_ids, md5=None):
        return await asyncio.to_thread(self._sync.complete, upload_id, part_ids=part_ids,
                                       md5=md5)

    async def cancel(self, upload_id):
        return await asyncio.to_thread(self._sync.cancel, upload_id)

    async def upload_file_chunked(self, *, file, mime_type, purpose, filename=None, bytes=None,
                                  part_size=None, md5=None, parallel=None, resume_path=None,
                                  progress=None):
        return await asyncio.to_thread(self._sync.upload_file_chunked, file=file,
                                       mime_type=mime_type, purpose=purpose, filename=filename,
                                       bytes=bytes, part_size=part_size, md5=md5,
                                       parallel=parallel, resume_path=resume_path,
                                       progress=progress)


class AsyncClient:
    """client.uploads and client.files, async."""

    def __init__(self, *args, **kwargs):
        self.uploads = AsyncUploads(*args, **kwargs)
        self.files = self.uploads.files

    def __repr__(self):
        return f"AsyncClient(base_url={self.uploads.base_url!r})"

    async def close(self):
        await self.uploads.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()
