//! Seeing any dimension: the PCA plane against an independent eigen-decomposition (power
//! iteration with deflation), points on the axes, the plane through the mean, projected
//! covariances, and the scene of 3-D data drawn through one projection.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use implicit_em_lab::core::projection::{Plane, Projection, mean};

/// Deterministic 3-D data with covariance close to R diag(9, 4, 1) Rᵀ (a rotation R), N = 4000.
fn anisotropic() -> Vec<f64> {
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let (c, s) = (0.6_f64, 0.8_f64);
    let mut out = Vec::new();
    for _ in 0..4000 {
        let z: [f64; 3] = std::array::from_fn(|_| StandardNormal.sample(&mut rng));
        let v = [3.0 * z[0], 2.0 * z[1], z[2]];
        // Rotate the first two axes by (c, s) and the last two by (c, s).
        let a = [c * v[0] - s * v[1], s * v[0] + c * v[1], v[2]];
        let b = [a[0], c * a[1] - s * a[2], s * a[1] + c * a[2]];
        out.extend([b[0] + 10.0, b[1] - 5.0, b[2] + 1.0]);
    }
    out
}

/// The covariance, two-pass, written out here.
fn covariance(points: &[f64], d: usize) -> Vec<f64> {
    let n = points.len() / d;
    let m: Vec<f64> = (0..d)
        .map(|a| points.iter().skip(a).step_by(d).sum::<f64>() / n as f64)
        .collect();
    let mut c = vec![0.0; d * d];
    for x in points.chunks(d) {
        for a in 0..d {
            for b in 0..d {
                c[a * d + b] += (x[a] - m[a]) * (x[b] - m[b]) / n as f64;
            }
        }
    }
    c
}

/// The leading eigenpair of a symmetric matrix by power iteration.
fn power(c: &[f64], d: usize) -> (f64, Vec<f64>) {
    let mut v = vec![1.0; d];
    for _ in 0..5000 {
        let w: Vec<f64> = (0..d).map(|a| (0..d).map(|b| c[a * d + b] * v[b]).sum()).collect();
        let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
        v = w.iter().map(|x| x / norm).collect();
    }
    let lambda = (0..d)
        .map(|a| v[a] * (0..d).map(|b| c[a * d + b] * v[b]).sum::<f64>())
        .sum();
    (lambda, v)
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn principal_axes_match_an_independent_eigen_decomposition() {
    let x = anisotropic();
    let p = Projection::principal(&x, 3);
    let Plane::Principal { axes, explained } = &p.plane else {
        panic!("{p:?}")
    };
    let c = covariance(&x, 3);
    let (l1, v1) = power(&c, 3);
    // Deflate and iterate again for the second axis.
    let mut c2 = c.clone();
    for a in 0..3 {
        for b in 0..3 {
            c2[a * 3 + b] -= l1 * v1[a] * v1[b];
        }
    }
    let (l2, v2) = power(&c2, 3);
    let total = c[0] + c[4] + c[8];
    assert!(dot(&axes[0], &v1).abs() > 1.0 - 1e-10, "{:?} {v1:?}", axes[0]);
    assert!(dot(&axes[1], &v2).abs() > 1.0 - 1e-10, "{:?} {v2:?}", axes[1]);
    assert!((explained[0] - l1 / total).abs() < 1e-10 && (explained[1] - l2 / total).abs() < 1e-10);
    // Near the 9 : 4 : 1 the data were drawn with (sampling error of a few per cent).
    assert!((explained[0] - 9.0 / 14.0).abs() < 0.03 && (explained[1] - 4.0 / 14.0).abs() < 0.03);
    // Unit, orthogonal, each signed with its largest component positive.
    assert!((dot(&axes[0], &axes[0]) - 1.0).abs() < 1e-12 && dot(&axes[0], &axes[1]).abs() < 1e-12);
    for a in axes {
        let largest = a
            .iter()
            .copied()
            .fold(0.0, |m: f64, v| if v.abs() > m.abs() { v } else { m });
        assert!(largest > 0.0);
    }
    // The projected covariance of the data is diag(λ₁, λ₂).
    let pc = p.covariance(&c);
    assert!((pc[0] - l1).abs() < 1e-9 * l1 && (pc[3] - l2).abs() < 1e-9 * l1 && pc[1].abs() < 1e-9 * l1);
}

#[test]
fn points_on_the_axes_project_to_their_coordinates_and_the_plane_holds_the_mean() {
    let x = anisotropic();
    let p = Projection::principal(&x, 3);
    let Plane::Principal { axes, .. } = &p.plane else {
        panic!()
    };
    let m = mean(&x, 3);
    assert_eq!(p.mean, m);
    let on_axis: Vec<f64> = (0..3).map(|k| m[k] + 2.5 * axes[0][k] - 1.5 * axes[1][k]).collect();
    let u = p.project(&on_axis);
    assert!((u[0] - 2.5).abs() < 1e-12 && (u[1] + 1.5).abs() < 1e-12, "{u:?}");
    // The background's plane: lift(0, 0) is the mean, and lift then project is the identity.
    let origin = p.lift([0.0, 0.0]);
    assert!(origin.iter().zip(&m).all(|(a, b)| (a - b).abs() < 1e-12));
    let back = p.project(&p.lift([3.0, -7.0]));
    assert!((back[0] - 3.0).abs() < 1e-12 && (back[1] + 7.0).abs() < 1e-12);
    // A drag moves within the plane: the hidden component (along a₁ × a₂) is kept.
    let normal = [
        axes[0][1] * axes[1][2] - axes[0][2] * axes[1][1],
        axes[0][2] * axes[1][0] - axes[0][0] * axes[1][2],
        axes[0][0] * axes[1][1] - axes[0][1] * axes[1][0],
    ];
    let v = [12.0, -3.0, 4.0];
    let moved = p.moved(&v, [1.0, 2.0]);
    let hidden = |y: &[f64]| dot(&normal, &[y[0] - m[0], y[1] - m[1], y[2] - m[2]]);
    assert!((hidden(&moved) - hidden(&v)).abs() < 1e-12);
    let at = p.project(&moved);
    assert!((at[0] - 1.0).abs() < 1e-12 && (at[1] - 2.0).abs() < 1e-12);
}

#[test]
fn two_coordinates_are_drawn_as_they_are() {
    let p = Projection::coordinates(vec![1.0, 2.0, 3.0], 2, 0);
    assert_eq!(p.project(&[7.0, 8.0, 9.0]), [9.0, 7.0]);
    assert_eq!(p.lift([5.0, 6.0]), vec![6.0, 2.0, 5.0]);
    let cov = [1.0, 0.1, 0.2, 0.1, 2.0, 0.3, 0.2, 0.3, 3.0];
    assert_eq!(p.covariance(&cov), [3.0, 0.2, 0.2, 1.0]);
    assert_eq!(
        p.axis_names(&["a".into(), "b".into(), "c".into()]),
        ["c".to_string(), "a".to_string()]
    );
    // 2-D data: the plane is the data itself, nothing to say.
    let whole = Projection::principal(&[0.0, 1.0, 2.0, 3.0], 2);
    assert!(whole.is_whole() && whole.describe(&[]).is_empty());
    assert_eq!(whole.project(&[0.25, -4.0]), [0.25, -4.0]);
}

#[cfg(feature = "gui")]
#[test]
fn the_scene_of_three_dimensional_data_goes_through_one_projection() {
    use implicit_em_lab::app::scene_data::SceneData;
    use implicit_em_lab::app::{LabApp, ViewPlane};
    let x = anisotropic();
    let mut csv = String::from("a,b,c\n");
    for p in x.chunks(3).take(600) {
        csv.push_str(&format!("{},{},{}\n", p[0], p[1], p[2]));
    }
    let path = std::env::temp_dir().join(format!("iel-projection-{}.csv", std::process::id()));
    std::fs::write(&path, csv).unwrap();
    let mut app = LabApp::bundled_default();
    app.worker_mut().pin_to_ui_thread();
    app.open_path(&path);
    app.advance(5);
    let data = SceneData::new(app.session(), app.view(), None, Some(4), &[vec![10.0, -5.0, 1.0]]);
    let problem = &data.problem;
    assert_eq!(problem.dim, 3);
    let plane = problem.principal_plane().clone();
    assert_eq!(data.projection, plane);
    for (k, &i) in data.drawn.iter().enumerate() {
        assert_eq!(data.points[k], plane.project(problem.point(i)));
    }
    assert_eq!(data.gd_prototype(1), plane.project(data.gd.prototype(1)));
    assert_eq!(data.selected, Some(plane.project(problem.point(4))));
    assert_eq!(data.probes[0].path[0], vec![10.0, -5.0, 1.0]);
    let names = plane.axis_names(&problem.names);
    assert!(
        names[0].starts_with("PC1 (") && names[0].ends_with("% of variance)"),
        "{names:?}"
    );
    assert!(
        plane
            .describe(&problem.names)
            .starts_with("PCA plane of 3 coordinates through the data mean (")
    );
    // Two coordinates instead: c against a, the others at the mean.
    app.view_mut().plane = ViewPlane::Coordinates(2, 0);
    let data = SceneData::new(app.session(), app.view(), None, None, &[]);
    let p = data.problem.point(0);
    assert_eq!(data.points[0], [p[2], p[0]]);
    assert_eq!(
        data.projection.axis_names(&data.problem.names),
        ["c".to_string(), "a".to_string()]
    );
}

/// Three classes apart along a low-variance direction, a large nuisance spread along another:
/// PCA's first axis is the nuisance, LDA's the classes' direction, as an independent power
/// iteration on `S_w⁻¹ S_b` finds it.
#[test]
fn discriminant_axes_separate_the_classes_where_pca_sees_the_spread() {
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let (mut x, mut labels) = (Vec::new(), Vec::new());
    for i in 0..900 {
        let c = i % 3;
        let z: [f64; 3] = std::array::from_fn(|_| StandardNormal.sample(&mut rng));
        // Nuisance: σ = 10 along e₀; classes at −1.5, 0, 1.5 along e₂ with σ = 0.3; e₁: σ = 1.
        x.extend([10.0 * z[0], z[1], 1.5 * (c as f64 - 1.0) + 0.3 * z[2]]);
        labels.push(Some(c as u32));
    }
    let pca = Projection::principal(&x, 3);
    let Plane::Principal { axes, .. } = &pca.plane else {
        panic!()
    };
    assert!(axes[0][0].abs() > 0.99, "{:?}", axes[0]);
    let lda = Projection::discriminant(&x, 3, &labels).unwrap();
    let Plane::Discriminant { axes, separation } = &lda.plane else {
        panic!()
    };
    assert!(axes[0][2].abs() > 0.99, "{:?}", axes[0]);
    assert!((dot(&axes[0], &axes[0]) - 1.0).abs() < 1e-12 && dot(&axes[0], &axes[1]).abs() < 1e-12);
    // Independent: S_w and S_b written out, the leading eigenvector of S_w⁻¹ S_b by power
    // iteration (S_w⁻¹ by Gauss–Jordan on 3 × 3).
    let (sw, sb) = scatter(&x, &labels);
    let inv = invert3(&sw);
    let a: Vec<f64> = (0..9)
        .map(|k| (0..3).map(|m| inv[k / 3 * 3 + m] * sb[m * 3 + k % 3]).sum())
        .collect();
    let mut v = vec![1.0, 1.0, 1.0];
    for _ in 0..2000 {
        let w: Vec<f64> = (0..3).map(|r| (0..3).map(|c| a[r * 3 + c] * v[c]).sum()).collect();
        let n = dot(&w, &w).sqrt();
        v = w.iter().map(|q| q / n).collect();
    }
    assert!(dot(&v, &axes[0]).abs() > 1.0 - 1e-9, "{v:?} {:?}", axes[0]);
    let quad = |s: &[f64], w: &[f64]| {
        (0..3)
            .map(|r| w[r] * (0..3).map(|c| s[r * 3 + c] * w[c]).sum::<f64>())
            .sum::<f64>()
    };
    let want = quad(&sb, &axes[0]) / quad(&sw, &axes[0]);
    assert!((separation[0] - want).abs() < 1e-9 * want, "{} {want}", separation[0]);
    // Fewer than two classes: no discriminant plane.
    assert!(Projection::discriminant(&x, 3, &vec![Some(0); 900]).is_none());
}

fn scatter(x: &[f64], labels: &[Option<u32>]) -> (Vec<f64>, Vec<f64>) {
    let n = labels.len();
    let m: Vec<f64> = (0..3)
        .map(|a| (0..n).map(|i| x[i * 3 + a]).sum::<f64>() / n as f64)
        .collect();
    let (mut sw, mut sb) = (vec![0.0; 9], vec![0.0; 9]);
    for c in 0..3u32 {
        let idx: Vec<usize> = (0..n).filter(|&i| labels[i] == Some(c)).collect();
        let nc = idx.len() as f64;
        let mc: Vec<f64> = (0..3)
            .map(|a| idx.iter().map(|&i| x[i * 3 + a]).sum::<f64>() / nc)
            .collect();
        for &i in &idx {
            for a in 0..3 {
                for b in 0..3 {
                    sw[a * 3 + b] += (x[i * 3 + a] - mc[a]) * (x[i * 3 + b] - mc[b]);
                }
            }
        }
        for a in 0..3 {
            for b in 0..3 {
                sb[a * 3 + b] += nc * (mc[a] - m[a]) * (mc[b] - m[b]);
            }
        }
    }
    (sw, sb)
}

fn invert3(m: &[f64]) -> Vec<f64> {
    let mut a: Vec<Vec<f64>> = (0..3)
        .map(|r| {
            let mut row = m[r * 3..r * 3 + 3].to_vec();
            row.extend((0..3).map(|c| f64::from(u8::from(c == r))));
            row
        })
        .collect();
    for c in 0..3 {
        let p = (c..3).max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs())).unwrap();
        a.swap(c, p);
        let d = a[c][c];
        a[c].iter_mut().for_each(|v| *v /= d);
        for r in 0..3 {
            if r != c {
                let f = a[r][c];
                let pivot = a[c].clone();
                a[r].iter_mut().zip(&pivot).for_each(|(v, p)| *v -= f * p);
            }
        }
    }
    a.iter().flat_map(|row| row[3..].to_vec()).collect()
}
