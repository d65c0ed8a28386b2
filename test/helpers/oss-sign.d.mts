// Types of oss-sign.mjs (the OSS V1 signature written from Alibaba Cloud's document).
export function stringToSign(method: string, resource: string, headers: Record<string, string | undefined>): string;
export function sign(secret: string, text: string): string;
export function canonicalResource(pathname: string, query: string | undefined): string;
/** Undefined when the request's Authorization is the documented signature with `secret`, else why not. */
export function ossVerify(method: string, pathname: string, query: string | undefined, headers: Record<string, string | undefined>, secret: string): string | undefined;
