import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** An error reply of the cellops REST API, with the server's message (what to do next). */
export class APIError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly reason: string | null = null
  ) {
    super(message);
  }

  /** No workspace yet under the server's root folder (not a failure). */
  get noWorkspace(): boolean {
    return this.status === 404 && this.reason === 'no workspace';
  }
}

/** Call `{base_url}cellops/api/v1/{endPoint}` with the server's auth and XSRF handling. */
export async function requestAPI<T>(endPoint: string, init: RequestInit = {}): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'cellops/api/v1', endPoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new APIError(0, `Cannot reach the Jupyter server: ${error}`);
  }
  const text = await response.text();
  let data: any = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    throw new APIError(response.status, (data && data.message) || response.statusText, data && data.reason);
  }
  return data as T;
}

/** URL of an artifact download (opened by the browser, with the auth cookie). */
export function artifactURL(runId: string, path: string): string {
  const settings = ServerConnection.makeSettings();
  return URLExt.join(settings.baseUrl, 'cellops/api/v1/runs', runId, 'artifacts', ...path.split('/').map(encodeURIComponent));
}
