/**
 * The part of an X.509 Certificate (RFC 5280 §4.1) that the SVID rules read, as an
 * @peculiar/asn1-schema schema built from @peculiar/asn1-x509's own types: version, validity
 * and extensions are decoded exactly as asn1-x509's `Certificate` decodes them; every other
 * field (serial number, algorithm identifiers, issuer and subject names, public key, signature)
 * is matched as one ASN.1 element and kept undecoded (`AsnPropTypes.Any`). Nothing here reads
 * DER by hand: asn1js still decodes the whole certificate and the schema checks its shape.
 *
 * Why (issue 15, start-up time): converting the names, the key and the algorithm identifiers
 * into asn1-x509 objects was a third of the X.509 work of each `spike` call, for fields that
 * no rule reads from here (subject and issuer are compared as `node:crypto` text; keys and
 * signatures are checked by `node:crypto`, which parsed the certificate first).
 */
import { AsnProp, AsnPropTypes } from '@peculiar/asn1-schema';
import { Extensions, Validity, Version } from '@peculiar/asn1-x509';

/** TBSCertificate with only version, validity and extensions decoded. */
export class TbsCertificateFacts {
  @AsnProp({ type: AsnPropTypes.Integer, context: 0, defaultValue: Version.v1 })
  version: Version = Version.v1;

  @AsnProp({ type: AsnPropTypes.Any })
  serialNumber: ArrayBuffer = new ArrayBuffer(0);

  @AsnProp({ type: AsnPropTypes.Any })
  signature: ArrayBuffer = new ArrayBuffer(0);

  @AsnProp({ type: AsnPropTypes.Any })
  issuer: ArrayBuffer = new ArrayBuffer(0);

  @AsnProp({ type: Validity })
  validity: Validity = new Validity();

  @AsnProp({ type: AsnPropTypes.Any })
  subject: ArrayBuffer = new ArrayBuffer(0);

  @AsnProp({ type: AsnPropTypes.Any })
  subjectPublicKeyInfo: ArrayBuffer = new ArrayBuffer(0);

  @AsnProp({ type: AsnPropTypes.BitString, context: 1, implicit: true, optional: true })
  issuerUniqueID?: ArrayBuffer;

  @AsnProp({ type: AsnPropTypes.BitString, context: 2, implicit: true, optional: true })
  subjectUniqueID?: ArrayBuffer;

  @AsnProp({ type: Extensions, context: 3, optional: true })
  extensions?: Extensions;
}

/** Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }. */
export class CertificateFacts {
  @AsnProp({ type: TbsCertificateFacts })
  tbsCertificate: TbsCertificateFacts = new TbsCertificateFacts();

  @AsnProp({ type: AsnPropTypes.Any })
  signatureAlgorithm: ArrayBuffer = new ArrayBuffer(0);

  @AsnProp({ type: AsnPropTypes.Any })
  signatureValue: ArrayBuffer = new ArrayBuffer(0);
}
