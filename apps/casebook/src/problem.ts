/** An error that becomes an `application/problem+json` response. */
export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail?: string,
  ) {
    super(detail ?? title);
  }

  toJSON(): { type: string; title: string; status: number; detail?: string } {
    return {
      type: 'about:blank',
      title: this.title,
      status: this.status,
      ...(this.detail ? { detail: this.detail } : {}),
    };
  }
}

export const badRequest = (detail: string) => new HttpProblem(400, 'Bad Request', detail);
export const notFound = (detail: string) => new HttpProblem(404, 'Not Found', detail);
