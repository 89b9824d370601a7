//! GEO helpers: add positions (pipelined), read one back, search around a point.

use super::{Error, Redis};

/// Largest number of members sent in one `GEOADD`; bigger batches become several commands in
/// one pipeline.
pub(crate) const GEOADD_CHUNK: usize = 512;

/// Redis GEO accepts latitudes up to ±85.05112878 (the Web Mercator limit).
const MAX_LAT: f64 = 85.051_128_78;

/// One result of [`Redis::geo_search`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct GeoHit {
    /// The member.
    pub member: String,
    /// Its distance from the search centre, metres.
    pub distance_m: f64,
}

impl Redis {
    /// Adds or moves members of the GEO set `key`: one `GEOADD` per 512 points, all in one
    /// pipeline (one round trip). Returns how many members were new.
    ///
    /// Every coordinate is validated first; nothing is written if one is out of range. On a
    /// cluster, all points go to `key`'s slot.
    pub async fn geo_add<M: AsRef<str>>(
        &mut self,
        key: &str,
        points: &[(f64, f64, M)],
    ) -> Result<usize, Error> {
        for (lng, lat, member) in points {
            if !valid_coordinate(*lng, *lat) {
                return Err(Error::InvalidCoordinate {
                    member: member.as_ref().to_owned(),
                    lng: *lng,
                    lat: *lat,
                });
            }
        }
        if points.is_empty() {
            return Ok(0);
        }
        let mut pipe = redis::pipe();
        for chunk in points.chunks(GEOADD_CHUNK) {
            let cmd = pipe.cmd("GEOADD").arg(key);
            for (lng, lat, member) in chunk {
                cmd.arg(*lng).arg(*lat).arg(member.as_ref());
            }
        }
        let added: Vec<usize> = pipe
            .query_async(self)
            .await
            .map_err(|source| Error::Command {
                command: "GEOADD",
                source,
            })?;
        let added = added.iter().sum();
        tracing::trace!(key, points = points.len(), added, "GEOADD");
        Ok(added)
    }

    /// The stored position `(longitude, latitude)` of `member` in `key`, or `None` if absent.
    ///
    /// Redis stores positions as 52-bit geohashes, so values come back within about 1 m of
    /// what was written, not bit-identical.
    pub async fn geo_pos(&mut self, key: &str, member: &str) -> Result<Option<(f64, f64)>, Error> {
        let reply: Vec<Option<(f64, f64)>> = redis::cmd("GEOPOS")
            .arg(key)
            .arg(member)
            .query_async(self)
            .await
            .map_err(|source| Error::Command {
                command: "GEOPOS",
                source,
            })?;
        Ok(reply.into_iter().next().flatten())
    }

    /// Members of `key` within `radius_m` metres of `(lng, lat)`, nearest first, at most
    /// `limit` of them (`GEOSEARCH … FROMLONLAT … BYRADIUS … ASC COUNT … WITHDIST`).
    ///
    /// Keep the radius small in dense areas: sorting a large neighbourhood is what makes
    /// `GEOSEARCH` slow.
    pub async fn geo_search(
        &mut self,
        key: &str,
        (lng, lat): (f64, f64),
        radius_m: f64,
        limit: usize,
    ) -> Result<Vec<GeoHit>, Error> {
        if !valid_coordinate(lng, lat) {
            return Err(Error::InvalidCoordinate {
                member: "<search centre>".to_owned(),
                lng,
                lat,
            });
        }
        let reply: Vec<(String, f64)> = redis::cmd("GEOSEARCH")
            .arg(key)
            .arg("FROMLONLAT")
            .arg(lng)
            .arg(lat)
            .arg("BYRADIUS")
            .arg(radius_m)
            .arg("m")
            .arg("ASC")
            .arg("COUNT")
            .arg(limit.max(1))
            .arg("WITHDIST")
            .query_async(self)
            .await
            .map_err(|source| Error::Command {
                command: "GEOSEARCH",
                source,
            })?;
        Ok(reply
            .into_iter()
            .map(|(member, distance_m)| GeoHit { member, distance_m })
            .collect())
    }

    /// Removes `member` from the GEO set `key`; returns whether it was there.
    pub async fn geo_remove(&mut self, key: &str, member: &str) -> Result<bool, Error> {
        let removed: usize = redis::cmd("ZREM")
            .arg(key)
            .arg(member)
            .query_async(self)
            .await
            .map_err(|source| Error::Command {
                command: "ZREM",
                source,
            })?;
        Ok(removed > 0)
    }
}

/// Whether Redis GEO accepts the coordinate.
pub(crate) fn valid_coordinate(lng: f64, lat: f64) -> bool {
    (-180.0..=180.0).contains(&lng) && (-MAX_LAT..=MAX_LAT).contains(&lat)
}

#[cfg(test)]
mod tests {
    use super::valid_coordinate;

    #[test]
    fn coordinates_are_bounded_like_redis() {
        assert!(valid_coordinate(24.9384, 60.1699));
        assert!(valid_coordinate(-180.0, -85.05));
        assert!(!valid_coordinate(24.9, 86.0));
        assert!(!valid_coordinate(181.0, 0.0));
        assert!(!valid_coordinate(f64::NAN, 0.0));
    }
}
