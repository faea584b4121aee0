/**
 * What the S3 API has answered since the node started: requests by
 * operation and status, and the time to their answers' headers, as the
 * admin API's /metrics reports them.
 */
import type { MetricFamily } from "../../util/metrics.ts";

interface OperationCounts {
  /** Requests by HTTP status. */
  statuses: Map<number, number>;
  seconds: number;
}

export class S3RequestMetrics {
  readonly #operations = new Map<string, OperationCounts>();

  /** One answered request: its operation (as AWS names it), status and time to headers. */
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
        name: "remise_s3_requests_total",
        help: "S3 requests answered, by operation and HTTP status.",
        type: "counter",
        samples: operations.flatMap(([operation, counts]) =>
          [...counts.statuses].sort(([a], [b]) => a - b).map(([status, value]) => ({
            labels: { operation, status: String(status) },
            value,
          }))
        ),
      },
      {
        name: "remise_s3_request_seconds_total",
        help:
          "Time from each S3 request's arrival to its answer's headers, summed by operation (divide by the requests for a mean).",
        type: "counter",
        samples: operations.map(([operation, counts]) => ({
          labels: { operation },
          value: counts.seconds,
        })),
      },
    ];
  }
}
