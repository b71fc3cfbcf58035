/** A flash config the appliance must refuse: names the offending file and why. */
export class FlashConfigError extends Error {
  override readonly name = 'FlashConfigError';

  constructor(
    readonly file: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${reason}`, options);
  }
}

/** A certificate that must not be trusted (own or a peer's), with the reason. */
export class CertificateRejectedError extends Error {
  override readonly name = 'CertificateRejectedError';

  constructor(readonly reason: string) {
    super(reason);
  }
}
