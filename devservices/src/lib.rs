//! dev services
