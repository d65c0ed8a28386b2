// The part of ali-oss (it ships no types) that the OSS backend uses.
declare module 'ali-oss' {
  interface Options {
    endpoint: string;
    bucket: string;
    accessKeyId: string;
    accessKeySecret: string;
    secure?: boolean;
    timeout?: number;
  }
  interface Response {
    res: { status: number; headers: Record<string, string | undefined> };
  }
  export default class OSS {
    constructor(options: Options);
    head(name: string): Promise<Response>;
    get(name: string, file?: undefined, options?: { headers?: Record<string, string> }): Promise<Response & { content: Buffer }>;
    getStream(name: string): Promise<Response & { stream: NodeJS.ReadableStream }>;
  }
}
