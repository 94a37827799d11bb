"""Image transforms (CNTK's ``cntk.io.transforms``): descriptions, with CNTK's config keys,
that ``ImageDeserializer`` applies in order (crop, scale, mean, color)."""

__all__ = ['crop', 'scale', 'mean', 'color']


def crop(crop_type='center', crop_size=0, side_ratio=0.0, area_ratio=0.0, aspect_ratio=1.0,
         jitter_type='none'):
    return dict(type='Crop', cropType=crop_type, cropSize=crop_size, sideRatio=side_ratio,
                areaRatio=area_ratio, aspectRatio=aspect_ratio, jitterType=jitter_type)


def scale(width, height, channels, interpolations='linear', scale_mode='fill', pad_value=-1):
    return dict(type='Scale', width=width, height=height, channels=channels,
                interpolations=interpolations, scaleMode=scale_mode, padValue=pad_value)


def mean(filename):
    return dict(type='Mean', meanFile=filename)


def color(brightness_radius=0.0, contrast_radius=0.0, saturation_radius=0.0):
    return dict(type='Color', brightnessRadius=brightness_radius, contrastRadius=contrast_radius,
                saturationRadius=saturation_radius)
