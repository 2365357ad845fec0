// The page's only way to talk to the sector manager: JSON-RPC 2.0 over POST with the
// signed-in token, turning every failure into an RpcError whose `kind` says whose fault
// it is (the network, the token, or the method), so the views can word it for an operator.

const TIMEOUT_MS = 15000;
/** Long enough for a worker command: a thread takes it between two steps, and the
 * manager gives the worker 30 s. */
export const ACTION_TIMEOUT_MS = 40000;

/** A failed call. `kind`: "network" (no answer), "auth" (HTTP 401), "http" (another
 * HTTP status), "rpc" (the method answered a JSON-RPC error, `code` set). */
export class RpcError extends Error {
  constructor(kind, message, code = null, method = "") {
    super(message);
    this.name = "RpcError";
    this.kind = kind;
    this.code = code;
    this.method = method;
  }
}

/** Whether `error` is the manager refusing a method the token may not call. */
export function isPermissionError(error) {
  return error instanceof RpcError && error.kind === "rpc" &&
    error.message.startsWith("missing permission to invoke");
}

/** Whether `error` says the manager does not know the method (an older manager). */
export function isMethodNotFound(error) {
  return error instanceof RpcError && error.kind === "rpc" && error.code === -32601;
}

/** A client for the API at `path` (like "/rpc/v0") that sends `token`. */
export function createClient(path, token) {
  let nextId = 1;

  async function request(method, params, timeoutMs = TIMEOUT_MS) {
    const id = nextId++;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    let response;
    try {
      response = await fetch(path, {
        method: "POST",
        cache: "no-store",
        headers: {
          "Content-Type": "application/json",
          "Authorization": `Bearer ${token}`,
        },
        body: JSON.stringify({ jsonrpc: "2.0", id, method, params }),
        signal: controller.signal,
      });
    } catch (error) {
      const why = error.name === "AbortError" ? `no answer within ${timeoutMs / 1000} s` : error.message;
      throw new RpcError("network", `no answer: ${why}`, null, method);
    } finally {
      clearTimeout(timer);
    }
    if (response.status === 401) {
      throw new RpcError("auth", "the manager refused the token (HTTP 401)", null, method);
    }
    if (!response.ok) {
      const text = (await response.text().catch(() => "")).trim();
      throw new RpcError("http", `HTTP ${response.status}${text ? `: ${text}` : ""}`, null, method);
    }
    let answer;
    try {
      answer = await response.json();
    } catch {
      throw new RpcError("http", `${method}: the answer is not JSON`, null, method);
    }
    if (answer.error) {
      throw new RpcError("rpc", String(answer.error.message ?? "unknown error"), answer.error.code ?? null, method);
    }
    return answer.result;
  }

  return {
    call: (method, ...params) => request(method, params),
    /** A call that may take long (an operator command relayed to a worker). */
    slowCall: (method, ...params) => request(method, params, ACTION_TIMEOUT_MS),
  };
}

/** The page settings the manager serves beside the page ({TraceUrl, RpcPath}). */
export async function loadSettings() {
  const fallback = { TraceUrl: "", RpcPath: "/rpc/v0" };
  try {
    const response = await fetch("web-admin-settings.json", { cache: "no-store" });
    if (!response.ok) return fallback;
    return { ...fallback, ...(await response.json()) };
  } catch {
    return fallback;
  }
}
