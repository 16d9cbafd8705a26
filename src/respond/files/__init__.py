"""Files: uploads streamed into a `BlobStore`, their rows in the `files` table (`FileService`)."""
