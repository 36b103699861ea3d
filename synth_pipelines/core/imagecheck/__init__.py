"""Checks that apply to any image set, faces included: decodability, blur, exposure, size, mode
and near-duplicates by perceptual hash."""
