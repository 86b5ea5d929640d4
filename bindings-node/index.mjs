// ESM entry point: the same API as the CommonJS build (index.js).
import vendorgate from './index.js'

export const {
  Gateway,
  Client,
  VaultKey,
  VendorResponse,
  VendorgateError,
  Denied,
  Unauthorized,
  UnknownKey,
  KeyRevoked,
  KeyExpired,
  EndpointNotAllowed,
  SpendCapExceeded,
  DuplicateRequest,
  BadRequest,
  UpstreamError,
  StoreError,
  ConfigError,
  NotFound,
  CODES,
} = vendorgate

export default vendorgate
