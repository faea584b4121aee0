/**
 * What a server has answered since the node started: requests by operation
 * and status, and the time to their answers' headers, as the admin API's
 * /metrics reports them (the S3 API's, by AWS operation name; websites', by
 * HTTP method).
 */
import type { MetricFamily } from "./metrics.ts";

interface OperationCounts {
  /** Requests by HTTP status. */
  statuses: Map<number, number>;
  seconds: number;
}

export class RequestMetrics {
  readonly #operations = new Map<string, OperationCounts>();

  /**
   * @param prefix the families' name prefix, e.g. `remise_s3`
   * @param what what is counted, for the families' help text, e.g. "S3 requests"
   */
  constructor(private readonly prefix: string, private readonly what: string) {}

  /** One answered request: its operation, status and time to headers. */
  record(operation: string, status: number, seconds: number): void {
    let counts = this.#operations.get(operation);
    if (!counts) {
      counts = { statuses: new Map(), seconds: 0 };
      this.#operations.set(operation, counts);
    }
    counts.statuses.set(status, (counts.statuses.get(status) ?? 0) + 1);
    counts.seconds += seconds;
  }

  families(): MetricFamily[] {
    const operations = [...this.#operations].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0);
    return [
      {
        name: `${this.prefix}_requests_total`,
        help: `${this.what} answered, by operation and HTTP status.`,
        type: "counter",
        samples: operations.flatMap(([operation, counts]) =>
          [...counts.statuses].sort(([a], [b]) => a - b).map(([status, value]) => ({
            labels: { operation, status: String(status) },
            value,
          }))
        ),
      },
      {
        name: `${this.prefix}_request_seconds_total`,
        help:
          `Time from each of the ${this.what} to its answer's headers, summed by operation (divide by the requests for a mean).`,
        type: "counter",
        samples: operations.map(([operation, counts]) => ({
          labels: { operation },
          value: counts.seconds,
        })),
      },
    ];
  }
}
