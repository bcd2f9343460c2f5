// What the tests of uploads in parts read: one entry per finished file, with the error, if any.
export function report(uppy) {
  uppy.on('upload-success', (file, response) => window.results.push({
    name: file.name, location: response.uploadURL,
  }));
  uppy.on('upload-error', (file, error) => window.results.push({
    name: file.name, error: String(error),
  }));
  window.uppy = uppy;
}
